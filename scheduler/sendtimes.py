"""When may a campaign email go out to one person: their zone, the campaign's window, open days.

Shared by the planner (which postpones due enrollments to the next open moment) and by dispatch
(which re-checks at send time, so a retry or a backlog after downtime never mails anyone at night
or on a quiet day).
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from scheduler.settings import parse_window
from scheduler.windows import OPEN_EVERY_DAY, Closures, in_window, next_open


class SendTimes:
    def __init__(
        self, default_zone: ZoneInfo, window: str, closures: Closures = OPEN_EVERY_DAY
    ) -> None:
        self.default_zone = default_zone
        self.window = parse_window(window)
        self.closures = closures
        self._windows: dict[str, tuple[time, time]] = {}
        self._zones: dict[str | None, ZoneInfo] = {}

    def zone(self, name: str | None) -> ZoneInfo:
        if name not in self._zones:
            try:
                self._zones[name] = ZoneInfo(name) if name else self.default_zone
            except (KeyError, ValueError):
                self._zones[name] = self.default_zone
        return self._zones[name]

    def window_for(self, override: str | None) -> tuple[time, time]:
        if override is None:
            return self.window
        if override not in self._windows:
            self._windows[override] = parse_window(override)
        return self._windows[override]

    def is_open(self, now: datetime, zone: str | None, override: str | None = None) -> bool:
        return in_window(now, self.zone(zone), self.window_for(override), self.closures)

    def next_open(self, now: datetime, zone: str | None, override: str | None = None) -> datetime:
        return next_open(now, self.zone(zone), self.window_for(override), self.closures)
