"""Planning: turn due enrollments into pending rows in the send ledger.

Each due enrollment is either planned (a ledger row is written and the enrollment advances),
postponed to a precise later time (outside the person's send window, frequency cap, pause), or
finished. Postponing to an exact time keeps every tick O(due): nothing is re-read until it is due.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from campaigns import enrollment
from campaigns.loader import Catalog
from campaigns.tables import COMPLETED, LEFT
from scheduler.ledger import CAMPAIGN, PENDING, sends
from scheduler.settings import parse_window
from scheduler.windows import in_window, next_open
from subscribers import store
from subscribers.tables import subscribers

FREQUENCY_CAP = timedelta(days=7)  # at most one campaign email in any seven days
PAUSED_CAMPAIGN_RECHECK = timedelta(hours=1)
BATCH = 500


@dataclass
class PlanReport:
    planned: int = 0
    postponed: int = 0
    finished: int = 0


def new_send_id() -> str:
    return uuid.uuid4().hex


def send_row(
    *,
    subscriber_id: int,
    campaign_id: str,
    step_id: str,
    variant_id: str,
    kind: str,
    now: datetime,
) -> dict[str, object]:
    """A new pending ledger row, due at once."""
    return {
        "send_id": new_send_id(),
        "subscriber_id": subscriber_id,
        "campaign_id": campaign_id,
        "step_id": step_id,
        "variant_id": variant_id,
        "kind": kind,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def insert_send(
    conn: Connection,
    *,
    subscriber_id: int,
    campaign_id: str,
    step_id: str,
    variant_id: str,
    kind: str,
    now: datetime,
) -> None:
    """Write a pending ledger row, unless one exists for (subscriber, campaign, step)."""
    insert_sends(
        conn,
        [
            send_row(
                subscriber_id=subscriber_id,
                campaign_id=campaign_id,
                step_id=step_id,
                variant_id=variant_id,
                kind=kind,
                now=now,
            )
        ],
    )


def insert_sends(conn: Connection, rows: list[dict[str, object]]) -> None:
    """Bulk form of :func:`insert_send` (one executemany per planning batch)."""
    if not rows:
        return
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = ins(sends).on_conflict_do_nothing(
        index_elements=[sends.c.subscriber_id, sends.c.campaign_id, sends.c.step_id]
    )
    conn.execute(stmt, rows)


@dataclass
class _Batch:
    """Decisions for one planning batch, written with a few executemany statements."""

    changes: list[enrollment.Change] = field(default_factory=list)
    sends: list[dict[str, object]] = field(default_factory=list)
    last_send: dict[int, datetime] = field(default_factory=dict)

    def flush(self, conn: Connection, now: datetime) -> None:
        insert_sends(conn, self.sends)
        if self.last_send:
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == bindparam("_sid"))
                .values(last_campaign_send_at=bindparam("_at")),
                [{"_sid": sid, "_at": at} for sid, at in self.last_send.items()],
            )
        enrollment.apply_changes(conn, self.changes, now)


class Planner:
    def __init__(self, catalog: Catalog, default_zone: ZoneInfo, window: str) -> None:
        self.catalog = catalog
        self.default_zone = default_zone
        self.window = parse_window(window)
        self._windows: dict[str, tuple[time, time]] = {}
        self._zones: dict[str | None, ZoneInfo] = {}

    def plan_batch(
        self, conn: Connection, now: datetime, after_id: int
    ) -> tuple[PlanReport, int | None]:
        """Plan one keyset batch; returns the report and the last id seen (None when done)."""
        report = PlanReport()
        due = enrollment.due_batch(conn, now, after_id, BATCH)
        if not due:
            return report, None
        people = store.profiles(conn, {d.subscriber_id for d in due})
        last_send: dict[int, datetime | None] = {
            pid: p.last_campaign_send_at for pid, p in people.items()
        }
        batch = _Batch()
        for d in due:
            self._plan_one(d, people.get(d.subscriber_id), last_send, now, report, batch)
        batch.flush(conn, now)
        return report, due[-1].enrollment_id

    def _plan_one(
        self,
        d: enrollment.Due,
        person: store.Profile | None,
        last_send: dict[int, datetime | None],
        now: datetime,
        report: PlanReport,
        batch: _Batch,
    ) -> None:
        def postpone(until: datetime) -> None:
            batch.changes.append(enrollment.Change(d.enrollment_id, d.step_index, until))
            report.postponed += 1

        def finish(status: str) -> None:
            batch.changes.append(enrollment.Change(d.enrollment_id, d.step_index, None, status))
            report.finished += 1

        campaign = self.catalog.get(d.campaign_id)
        if person is None or campaign is None or campaign.meta.status == "archived":
            return finish(LEFT)
        if person.status != store.CONFIRMED or person.red_flag:
            return finish(LEFT)
        if not campaign.active:  # draft or paused: look again later, cheaply
            return postpone(now + PAUSED_CAMPAIGN_RECHECK)
        if person.paused_until and person.paused_until > now:
            return postpone(person.paused_until)
        previous = last_send.get(person.id)
        if previous is not None and previous + FREQUENCY_CAP > now:
            return postpone(previous + FREQUENCY_CAP)
        zone = self._zone(person.timezone)
        window = self._window(campaign.meta.send_window)
        if not in_window(now, zone, window):
            return postpone(next_open(now, zone, window))
        found = enrollment.next_step(campaign, d.step_index, person.facts(now))
        if found is None:
            return finish(COMPLETED)
        index, step, variant = found
        batch.sends.append(
            send_row(
                subscriber_id=person.id,
                campaign_id=campaign.id,
                step_id=step.id,
                variant_id=variant.id,
                kind=CAMPAIGN,
                now=now,
            )
        )
        last_send[person.id] = now
        batch.last_send[person.id] = now
        batch.changes.append(enrollment.after_planning(campaign, d.enrollment_id, index, now))
        report.planned += 1
        return None

    def _window(self, override: str | None) -> tuple[time, time]:
        if override is None:
            return self.window
        if override not in self._windows:
            self._windows[override] = parse_window(override)
        return self._windows[override]

    def _zone(self, name: str | None) -> ZoneInfo:
        if name not in self._zones:
            try:
                self._zones[name] = ZoneInfo(name) if name else self.default_zone
            except (KeyError, ValueError):
                self._zones[name] = self.default_zone
        return self._zones[name]
