"""Local send windows, DST-correct: everything is computed in the subscriber's own zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def in_window(now: datetime, zone: ZoneInfo, window: tuple[time, time]) -> bool:
    local = now.astimezone(zone).time()
    start, end = window
    return start <= local < end


def next_open(now: datetime, zone: ZoneInfo, window: tuple[time, time]) -> datetime:
    """The next moment (UTC) at or after ``now`` when the window is open in ``zone``."""
    if in_window(now, zone, window):
        return now
    local = now.astimezone(zone)
    start = window[0]
    day = local.date()
    if local.time() >= start:
        day += timedelta(days=1)
    # fold=0 picks the first of two repeated wall-clock times; a start inside a DST gap is
    # normalised forward by the UTC round trip.
    opening = datetime.combine(day, start, tzinfo=zone)
    return opening.astimezone(UTC)
