"""The daily spam-complaint rate, the staff alert and the automatic pause of campaign email.

Mailbox providers judge a sender by the share of its mail that recipients mark as spam (Gmail's
bulk-sender rules: stay under 0.1%, never reach 0.3%). Per UTC day::

    rate = spam reports that day / max(emails that day, MIN_VOLUME)

* "spam reports" are ``complained`` events that happened that day, one per address;
* "emails" is the larger of the ledger rows sent that day and the deliveries reported that day
  (a weekly batch sent on Monday is mostly delivered on Monday; late deliveries still count);
* ``MIN_VOLUME`` (1000) is the floor of the denominator, so a quiet day cannot turn one unlucky
  complaint into a "10% complaint rate": one complaint alone never exceeds 0.1%, two in a day
  alert, four pause. On busy days the floor plays no part and the rate is the real one.

Over :data:`ALERT_RATE` staff get one alert email that day; over :data:`PAUSE_RATE` campaign
email is paused (the planner postpones it; confirmations, safety email and staff alerts still
go) and staff get an email saying so. The pause holds until staff run ``clinicmail health
resume``. A resume on a day that is still over the limit is respected: the same day pauses again
only if further complaints arrive.

The state is one JSON row in the shared ``kv`` table, updated under a row lock (PostgreSQL) or
SQLite's write lock, so web processes applying webhook events and the scheduler agree. Alerts
are raised in the ops-alert queue (:mod:`alerts`) in the same transaction and wait there until
the deliverer on the clock hands them to a transport; they carry only figures (no address, name
or symptom).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from alerts import pending, raise_alert
from campaigns.ledger_reads import sent_between
from engagement.events import Kind
from engagement.tables import email_events
from storage import kvstate
from storage.kvstate import JsonState
from templates.system import COMPLAINT_ALERT

log = logging.getLogger("clinicmail.complaints")

KEY = "engagement.complaints"
ALERT_RATE = 0.001  # over 0.1% in a day: staff are alerted
PAUSE_RATE = 0.003  # over 0.3% in a day: campaign email pauses
MIN_VOLUME = 1000
ALERT = "alert"
PAUSE = "pause"
_RANK = {None: 0, ALERT: 1, PAUSE: 2}
KEEP_DAYS = 14  # how long per-day bookkeeping is kept in the state row


@dataclass(frozen=True)
class DayFigures:
    day: date
    complaints: int
    sent: int
    delivered: int
    min_volume: int = MIN_VOLUME

    @property
    def volume(self) -> int:
        return max(self.sent, self.delivered)

    @property
    def rate(self) -> float:
        return self.complaints / max(self.volume, self.min_volume, 1)

    def level(self, alert_rate: float = ALERT_RATE, pause_rate: float = PAUSE_RATE) -> str | None:
        if self.rate > pause_rate:
            return PAUSE
        if self.rate > alert_rate:
            return ALERT
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "complaints": self.complaints,
            "sent": self.sent,
            "delivered": self.delivered,
            "volume": self.volume,
            "rate": round(self.rate, 6),
        }


@dataclass
class ComplaintState(JsonState):
    paused: bool = False
    paused_at: str | None = None
    paused_because: dict[str, Any] | None = None  # the DayFigures that paused it
    resumed_at: str | None = None
    # Per day: complaints counted when staff resumed (a same-day re-pause needs more than that).
    resumed_with: dict[str, int] = field(default_factory=dict)
    alerted: dict[str, str] = field(default_factory=dict)  # day → highest level alerted

    def prune(self, today: date) -> None:
        oldest = (today - timedelta(days=KEEP_DAYS)).isoformat()
        self.alerted = {d: v for d, v in self.alerted.items() if d >= oldest}
        self.resumed_with = {d: v for d, v in self.resumed_with.items() if d >= oldest}


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_figures(conn: Connection, day: date, *, min_volume: int = MIN_VOLUME) -> DayFigures:
    start, end = _bounds(day)
    e = email_events.c

    def events(kind: Kind, distinct: Any) -> int:
        return int(
            conn.execute(
                select(func.count(func.distinct(distinct))).where(
                    e.kind == kind, e.occurred_at >= start, e.occurred_at < end
                )
            ).scalar_one()
        )

    sent = sent_between(conn, start, end)
    return DayFigures(
        day=day,
        # one per address: a provider repeating a report, or one person reporting two emails,
        # is one unhappy recipient
        complaints=events(Kind.COMPLAINED, func.coalesce(e.email_hash, e.natural_key)),
        sent=sent,
        delivered=events(Kind.DELIVERED, func.coalesce(e.send_id, e.natural_key)),
        min_volume=min_volume,
    )


def load(conn: Connection) -> ComplaintState:
    return ComplaintState.load(kvstate.read(conn, KEY))


def is_paused(conn: Connection) -> bool:
    """Is campaign email paused for complaints? One primary-key read; cheap enough per batch."""
    return load(conn).paused


def _update(conn: Connection, change: Callable[[ComplaintState], bool]) -> ComplaintState:
    """Apply ``change`` to the stored state under a row lock; write only if it says it changed."""
    state = ComplaintState.load(kvstate.read_locked(conn, KEY, ComplaintState().dump()))
    if change(state):
        kvstate.write(conn, KEY, state.dump())
    return state


@dataclass
class Evaluation:
    figures: list[DayFigures]
    state: ComplaintState
    newly_paused: bool = False
    queued: list[str] = field(default_factory=list)  # levels of alerts queued now


def evaluate(
    conn: Connection,
    now: datetime,
    *,
    min_volume: int = MIN_VOLUME,
    alert_rate: float = ALERT_RATE,
    pause_rate: float = PAUSE_RATE,
) -> Evaluation:
    """Check today and yesterday (UTC; reports of yesterday's mail arrive after midnight too);
    queue alerts and pause as the rules in the module docstring say. Idempotent."""
    today = now.astimezone(UTC).date()
    figures = [day_figures(conn, d, min_volume=min_volume) for d in (today, today - timedelta(1))]
    result = Evaluation(figures=figures, state=ComplaintState())

    def change(state: ComplaintState) -> bool:
        before = state.dump()
        raised.clear()
        state.prune(today)
        for fig in figures:
            level = fig.level(alert_rate, pause_rate)
            if level is None:
                continue
            day = fig.day.isoformat()
            pause = (
                level == PAUSE
                and not state.paused
                and fig.complaints > state.resumed_with.get(day, -1)
            )
            if pause:
                state.paused = True
                state.paused_at = now.isoformat()
                state.paused_because = fig.as_dict()
                result.newly_paused = True
            # One rate alert per day; a pause is an action staff must undo, so it always says so.
            if pause or _RANK[level] > _RANK[state.alerted.get(day)]:
                if _RANK[level] > _RANK[state.alerted.get(day)]:
                    state.alerted[day] = level
                raised.append((PAUSE if pause else level, state.paused, fig))
        return state.dump() != before

    raised: list[tuple[str, bool, DayFigures]] = []
    result.state = _update(conn, change)
    for level, paused, fig in raised:
        key = f"{fig.day.isoformat()}/{level}/{now.isoformat()}"
        raise_alert(conn, COMPLAINT_ALERT, key, alert_variables(level, paused, fig), now)
        result.queued.append(level)
    for level in result.queued:  # figures only: no address, name or symptom
        fig = max(figures, key=lambda f: f.rate)
        log.error(
            "spam complaints on %s: %d of %d emails (%.2f%%)%s",
            fig.day.isoformat(),
            fig.complaints,
            fig.volume,
            fig.rate * 100,
            "; campaign email paused until `clinicmail health resume`"
            if level == PAUSE
            else "; staff alerted",
        )
    return result


def resume(conn: Connection, now: datetime) -> ComplaintState | None:
    """Staff lift the pause. Returns the state as it was (None when nothing was paused)."""
    today = now.astimezone(UTC).date()
    counts = {d.isoformat(): day_figures(conn, d).complaints for d in (today, today - timedelta(1))}
    was: list[ComplaintState] = []

    def change(state: ComplaintState) -> bool:
        if not state.paused:
            return False
        was.append(ComplaintState.load(state.dump()))
        state.paused = False
        state.resumed_at = now.isoformat()
        state.resumed_with.update(counts)
        return True

    _update(conn, change)
    return was[0] if was else None


def pending_alerts(conn: Connection) -> list[dict[str, Any]]:
    """The complaint alerts not yet handed to staff (their variables), oldest first."""
    return [a.variables for a in pending(conn, COMPLAINT_ALERT)]


def hold_campaign_sends(conn: Connection, now: datetime, until: datetime) -> int:
    """While paused, campaign rows already in the ledger (planned earlier, waiting for a send
    window or a retry) wait too; system email is untouched. Returns how many were held."""
    from campaigns import ledger

    return ledger.hold_campaign(conn, now, until)


# -- the staff alert email -------------------------------------------------------------------


def alert_variables(level: str, paused: bool, fig: DayFigures) -> dict[str, Any]:
    """The alert as staff read it (``complaint-alert``): figures and what to do, nothing about
    any person."""
    return {
        "level": level,
        "day": fig.day.isoformat(),
        "complaints": fig.complaints,
        "volume": fig.volume,
        "rate": f"{fig.rate * 100:.2f}%",
        "paused": paused,
        "alert_limit": f"{ALERT_RATE * 100:.1f}%",
        "pause_limit": f"{PAUSE_RATE * 100:.1f}%",
        "min_volume": MIN_VOLUME,
    }
