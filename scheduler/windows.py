"""Local send windows, DST-correct: everything is computed in the subscriber's own zone.

A campaign email may go out only inside the send window (``CLINICMAIL_SEND_WINDOW``) on an open
day: not on a quiet weekday (``CLINICMAIL_QUIET_DAYS``) and not on a clinic holiday
(``CLINICMAIL_HOLIDAYS``), both judged by the *subscriber's* local date. System email
(confirmation, safety, staff alerts) ignores all of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


def parse_quiet_days(value: str) -> frozenset[int]:
    """``"sat,sun"`` → ``{5, 6}`` (Monday is 0). Full names and any case are fine too."""
    days: set[int] = set()
    for part in value.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name in WEEKDAYS:
            days.add(WEEKDAYS.index(name))
        elif name in _FULL_NAMES:
            days.add(_FULL_NAMES.index(name))
        else:
            raise ValueError(f"{part.strip()!r} is not a day; use names such as sat,sun")
    if len(days) == 7:
        raise ValueError("cannot make all seven days quiet: no campaign email would ever go out")
    return frozenset(days)


def parse_holidays(value: str) -> frozenset[date]:
    """``"2026-12-25,2026-12-26"`` → those dates."""
    days: set[date] = set()
    for part in value.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            days.add(date.fromisoformat(text))
        except ValueError:
            raise ValueError(
                f"{text!r} is not an ISO date; use dates such as 2026-12-25,2026-12-26"
            ) from None
    return frozenset(days)


@dataclass(frozen=True)
class Closures:
    """Days on which no campaign email goes out, judged by the subscriber's local date."""

    quiet_days: frozenset[int] = frozenset()
    holidays: frozenset[date] = frozenset()

    def closed(self, day: date) -> bool:
        return day.weekday() in self.quiet_days or day in self.holidays


OPEN_EVERY_DAY = Closures()


def in_window(
    now: datetime,
    zone: ZoneInfo,
    window: tuple[time, time],
    closures: Closures = OPEN_EVERY_DAY,
) -> bool:
    local = now.astimezone(zone)
    if closures.closed(local.date()):
        return False
    start, end = window
    return start <= local.time() < end


def next_open(
    now: datetime,
    zone: ZoneInfo,
    window: tuple[time, time],
    closures: Closures = OPEN_EVERY_DAY,
) -> datetime:
    """The next moment (UTC) at or after ``now`` when the window is open in ``zone``."""
    if in_window(now, zone, window, closures):
        return now
    local = now.astimezone(zone)
    start = window[0]
    day = local.date()
    if local.time() >= start:
        day += timedelta(days=1)
    # Quiet weekdays are at most six in a row (validated), holidays are a finite list: the scan
    # always ends within len(holidays) + 7 days.
    for _ in range(len(closures.holidays) + 8):
        if not closures.closed(day):
            break
        day += timedelta(days=1)
    # fold=0 picks the first of two repeated wall-clock times; a start inside a DST gap is
    # normalised forward by the UTC round trip.
    opening = datetime.combine(day, start, tzinfo=zone)
    return opening.astimezone(UTC)
