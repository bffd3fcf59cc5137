"""The sunset policy: stop emailing people who no longer read, after asking them once.

With ``CLINICMAIL_SUNSET_WEEKS`` = W (0 turns the policy off), a confirmed subscriber is
*dormant* when all of these hold:

* they have been confirmed for at least W weeks;
* they were sent at least :data:`MIN_SENDS` campaign emails in the last W weeks (they had a real
  chance to engage: someone whose series ended long ago is not "ignoring" us);
* no human engagement in the last W weeks: no human open, no click, no check-in answer
  (machine opens and link-scanner clicks never count, see :mod:`engagement.process`).

A dormant person gets one re-engagement email ("still want these? one click to stay", queued by
the composition root through the ``ask`` callback) and is *paused* at once: the planner
postpones their campaign email. They become active again when they press "keep me" in that
email (``/keep/{token}``, a signed token with its own salt), or when any later human engagement
is recorded (say, a click in an older email). Their dormancy clock then restarts, so a person
who goes quiet again is asked again after another W weeks (the ledger step ids
``reengage:1``, ``reengage:2``… keep each ask unique).

Unsubscribing, suppression and erasure need nothing here: the planner and dispatch already stop
on them, and the row goes with the subscriber (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select, update

from campaigns.ledger_reads import received_at_least
from engagement.tables import sunset
from storage.sql import dialect_insert, ids_among
from subscribers import store
from subscribers.tables import subscriber_activity, subscribers
from templates.system import REENGAGE

PAUSED = "paused"
KEPT = "kept"
MIN_SENDS = 4
DEFAULT_WEEKS = 26
# The re-engagement email is the system email "reengage"; its ledger step ids say which ask it
# is ("reengage:1", "reengage:2"…) so the ledger's unique key allows one per cycle.
SYSTEM_EMAIL = REENGAGE
STEP_PREFIX = SYSTEM_EMAIL + ":"


@dataclass(frozen=True)
class Dormant:
    subscriber_id: int
    timezone: str | None
    cycle: int  # 1 for the first ask, 2 after they kept once and went quiet again…

    @property
    def step_id(self) -> str:
        return f"{STEP_PREFIX}{self.cycle}"


Ask = Callable[[Connection, list[Dormant], datetime], None]


@dataclass
class SunsetReport:
    weeks: int
    min_sends: int
    dry_run: bool
    asked: int = 0  # re-engagement emails queued (and people paused) by this run
    reactivated: int = 0  # paused people whose later engagement made them active again
    paused: int = 0  # people paused after this run
    kept: int = 0  # people who were asked once and chose to stay

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_reengagement(step_id: str) -> bool:
    return step_id.startswith(STEP_PREFIX)


def dormant(
    conn: Connection, now: datetime, weeks: int, *, min_sends: int = MIN_SENDS
) -> list[Dormant]:
    """Everyone the policy would ask now (see the module docstring)."""
    since = now - timedelta(weeks=weeks)
    s, a, su = subscribers.c, subscriber_activity.c, sunset.c
    received = received_at_least(since, min_sends)
    engaged = exists().where(a.subscriber_id == s.id, a.last_at > since)
    query = (
        select(s.id, s.timezone, func.coalesce(su.cycles, 0))
        .select_from(
            subscribers.join(received, received.c.subscriber_id == s.id).outerjoin(
                sunset, su.subscriber_id == s.id
            )
        )
        .where(
            s.status == store.CONFIRMED,
            s.red_flag.is_(False),
            func.coalesce(s.confirmed_at, s.created_at) <= since,
            or_(su.subscriber_id.is_(None), and_(su.state == KEPT, su.kept_at <= since)),
            ~engaged,
        )
        .order_by(s.id)
    )
    return [Dormant(sid, tz, int(cycles) + 1) for sid, tz, cycles in conn.execute(query)]


def _reawakened(conn: Connection) -> list[tuple[int, datetime]]:
    """Paused people with human engagement recorded after they were asked."""
    a, su = subscriber_activity.c, sunset.c
    query = (
        select(su.subscriber_id, func.max(a.last_at))
        .select_from(sunset.join(subscriber_activity, a.subscriber_id == su.subscriber_id))
        .where(su.state == PAUSED, a.last_at > su.asked_at)
        .group_by(su.subscriber_id)
    )
    return [(sid, at) for sid, at in conn.execute(query)]


def run(
    conn: Connection,
    now: datetime,
    weeks: int,
    ask: Ask,
    *,
    min_sends: int = MIN_SENDS,
    dry_run: bool = False,
) -> SunsetReport:
    """One pass of the policy (housekeeping, or ``clinicmail health sunset``). Idempotent: a
    second run at the same time asks nobody twice. ``dry_run`` only counts."""
    report = SunsetReport(weeks=weeks, min_sends=min_sends, dry_run=dry_run)
    if weeks <= 0:
        report.paused, report.kept = _counts(conn)
        return report
    awake = _reawakened(conn)
    report.reactivated = len(awake)
    if not dry_run:
        for sid, at in awake:
            conn.execute(
                update(sunset)
                .where(sunset.c.subscriber_id == sid, sunset.c.state == PAUSED)
                .values(state=KEPT, kept_at=at)
            )
    people = dormant(conn, now, weeks, min_sends=min_sends)
    report.asked = len(people)
    if not dry_run and people:
        ask(conn, people, now)
        _mark_asked(conn, people, now)
    report.paused, report.kept = _counts(conn)
    if dry_run:  # what the counts would be after a real run
        report.paused += report.asked - report.reactivated
        report.kept += report.reactivated
    return report


def _mark_asked(conn: Connection, people: list[Dormant], now: datetime) -> None:
    stmt = dialect_insert(conn, sunset)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[sunset.c.subscriber_id],
            set_={"state": PAUSED, "cycles": stmt.excluded.cycles, "asked_at": now},
        ),
        [
            {"subscriber_id": p.subscriber_id, "state": PAUSED, "cycles": p.cycle, "asked_at": now}
            for p in people
        ],
    )


def _counts(conn: Connection) -> tuple[int, int]:
    query = select(sunset.c.state, func.count()).group_by(sunset.c.state)
    rows: dict[str, int] = {state: int(n) for state, n in conn.execute(query)}
    return int(rows.get(PAUSED, 0)), int(rows.get(KEPT, 0))


def counts(conn: Connection) -> dict[str, int]:
    paused, kept = _counts(conn)
    return {"paused": paused, "kept": kept}


def paused_among(conn: Connection, ids: set[int] | list[int]) -> set[int]:
    """Which of these people are paused by the policy (one query)."""
    return ids_among(conn, sunset.c.subscriber_id, ids, sunset.c.state == PAUSED)


def keep(conn: Connection, subscriber_id: int, now: datetime) -> bool:
    """ "Keep me": active again from now. True when they had been paused."""
    result = conn.execute(
        update(sunset)
        .where(sunset.c.subscriber_id == subscriber_id, sunset.c.state == PAUSED)
        .values(state=KEPT, kept_at=now)
    )
    return bool(result.rowcount)
