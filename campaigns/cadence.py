"""The cadence rule: when may a campaign email go to one person. Everything else asks here.

The rule, in full:

- **Weekly cap.** A subscriber gets at most one campaign email (series step or one-off
  broadcast) in any seven days, *measured from the moment the provider accepted each email*
  (``subscribers.last_campaign_send_at``, written by the ledger when the transport reports the
  email accepted, never when it is planned). An email delayed by a retry, a back-off or an outage
  therefore moves the next one. A campaign's ``cadence_days`` may lengthen the gap before its own
  emails; it can never shorten it below the seven days.
- **One in flight.** While a campaign email to a person is planned but not yet accepted (pending,
  retrying, sending, or unknown), no other campaign email is planned for them: the moment the
  first is accepted is what the next waits for.
- **Time-sensitive broadcasts.** A broadcast staff mark time-sensitive goes at its time whatever
  the cap says; it still counts, so the series email after it waits its seven days from it.
- **Send window, quiet days, holidays.** A campaign email goes out only inside the send window
  (``CLINICMAIL_SEND_WINDOW`` or the campaign's own ``send_window``), on a day that is neither a
  quiet weekday (``CLINICMAIL_QUIET_DAYS``) nor a clinic holiday (``CLINICMAIL_HOLIDAYS``), all
  judged in the *subscriber's* own time zone (DST-correct). System email (confirmation, safety,
  staff alerts) ignores all of this.

Callers: the planner (which postpones a due enrollment to :meth:`Cadence.earliest`; it alone
enforces the cap, so a row that leaves later than planned only moves the next one), dispatch
(which re-checks the window at send time, so a retry or a backlog never mails anyone at night),
``campaigns journey`` (:func:`gap`, on whole days) and the broadcast ``--dry-run``.

One consequence of the time-sensitive exception: a series email already planned (still
retrying) when a time-sensitive broadcast falls due is not held back by it; every series email
planned after the broadcast waits seven days from its acceptance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from campaigns.definitions import Campaign

WEEKLY_CAP = timedelta(days=7)  # at most one campaign email in any seven days

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

# Why a campaign email waits (``Slot.reason``).
Reason = Literal["weekly_cap", "in_flight", "closed"]


def gap(campaign: Campaign | None) -> timedelta:
    """How long after the person's previous accepted campaign email this campaign's may go."""
    if campaign is None:
        return WEEKLY_CAP
    return max(WEEKLY_CAP, timedelta(days=campaign.meta.cadence_days))


# -- send windows, quiet days, holidays --------------------------------------------------------
def parse_window(value: str) -> tuple[time, time]:
    """``"08:00-20:00"`` → (08:00, 20:00); ``24:00`` is the end of the day."""
    try:
        start_s, end_s = value.split("-")
        start = time.fromisoformat(start_s.strip())
        end_text = end_s.strip()
        end = time(23, 59, 59) if end_text == "24:00" else time.fromisoformat(end_text)
    except ValueError:
        raise ValueError("must look like 08:00-20:00") from None
    if start >= end:
        raise ValueError("the start must be before the end, e.g. 08:00-20:00")
    return start, end


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
    # Quiet weekdays are at most six in a row (validated), holidays are a finite list, and a
    # window can miss a day only when the clocks jump over all of it: the scan always ends
    # within len(holidays) + 8 days.
    for _ in range(len(closures.holidays) + 9):
        if not closures.closed(day):
            opening = _first_reading(day, start, zone)
            if in_window(opening, zone, window, closures):
                return opening
        day += timedelta(days=1)
    raise AssertionError("unreachable: a validated window opens within a week")


def _first_reading(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first moment (UTC) at which the clock in ``zone`` reads ``wall`` or later on ``day``.

    Usually the moment the clock reads ``wall`` (the first of the two, when the clocks go back).
    When the clocks go forward over ``wall`` (a window opening at 01:30 in London on the last
    Sunday of March), it is the moment of the jump: the clock reads 02:00, later than ``wall``.
    """
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if second >= first:  # an ordinary reading, or a repeated one (fold=0 is the first)
        return first
    # In a gap, the two readings use the offsets either side of the jump, so the jump lies
    # between them; transitions fall on whole seconds, so a binary search over seconds finds it.
    low, high = 0, int((first - second).total_seconds())  # high: reads later than ``wall``
    while high - low > 1:
        mid = (low + high) // 2
        if (second + timedelta(seconds=mid)).astimezone(zone).replace(tzinfo=None) >= naive:
            high = mid
        else:
            low = mid
    return second + timedelta(seconds=high)


# -- the whole rule ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """The earliest moment a campaign email may go, and why it waits (None: it may go at once)."""

    at: datetime
    reason: Reason | None = None


class Cadence:
    """The rule for one configuration (clinic zone, default window, closed days)."""

    def __init__(
        self, default_zone: ZoneInfo, window: str, closures: Closures = OPEN_EVERY_DAY
    ) -> None:
        self.default_zone = default_zone
        self.window = parse_window(window)
        self.closures = closures
        self._windows: dict[str, tuple[time, time]] = {}
        self._zones: dict[str | None, ZoneInfo] = {}

    def zone(self, name: str | None) -> ZoneInfo:
        """The person's zone; an unknown or missing name falls back to the clinic's."""
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

    def earliest(
        self,
        now: datetime,
        campaign: Campaign | None,
        *,
        zone: str | None,
        last_accepted: datetime | None,
        in_flight_from: datetime | None = None,
    ) -> Slot:
        """When this campaign's email to one person may go, at or after ``now``.

        ``last_accepted`` is when the provider accepted the person's previous campaign email;
        ``in_flight_from`` is set when one is planned but not accepted yet (its due time: it
        cannot be accepted before, so the next cannot go before that plus the gap).
        """
        time_sensitive = campaign is not None and campaign.time_sensitive
        if not time_sensitive:
            if in_flight_from is not None:
                return Slot(max(now, in_flight_from) + gap(campaign), "in_flight")
            if last_accepted is not None and last_accepted + gap(campaign) > now:
                at = last_accepted + gap(campaign)
                override = campaign.meta.send_window if campaign is not None else None
                return Slot(self.next_open(at, zone, override), "weekly_cap")
        override = campaign.meta.send_window if campaign is not None else None
        if not self.is_open(now, zone, override):
            return Slot(self.next_open(now, zone, override), "closed")
        return Slot(now)
