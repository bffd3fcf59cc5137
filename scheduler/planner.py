"""Planning: turn due enrollments into pending rows in the send ledger.

Each due enrollment is either planned (a ledger row is written and the enrollment advances),
postponed to a precise later time (outside the person's send window, frequency cap, pause), or
finished. Postponing to an exact time keeps every tick O(due): nothing is re-read until it is due.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, update
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


def insert_send(
    conn: Connection,
    *,
    subscriber_id: int,
    campaign_id: str,
    step_id: str,
    variant_id: str,
    kind: str,
    now: datetime,
) -> bool:
    """Write a pending ledger row; False if one already exists for (subscriber, campaign, step)."""
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = ins(sends).on_conflict_do_nothing(
        index_elements=[sends.c.subscriber_id, sends.c.campaign_id, sends.c.step_id]
    )
    result = conn.execute(
        stmt,
        {
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
        },
    )
    return result.rowcount == 1


class Planner:
    def __init__(self, catalog: Catalog, default_zone: ZoneInfo, window: str) -> None:
        self.catalog = catalog
        self.default_zone = default_zone
        self.window = parse_window(window)

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
        for d in due:
            self._plan_one(conn, d, people.get(d.subscriber_id), last_send, now, report)
        return report, due[-1].enrollment_id

    def _plan_one(
        self,
        conn: Connection,
        d: enrollment.Due,
        person: store.Profile | None,
        last_send: dict[int, datetime | None],
        now: datetime,
        report: PlanReport,
    ) -> None:
        campaign = self.catalog.get(d.campaign_id)
        if person is None or campaign is None or campaign.meta.status == "archived":
            enrollment.finish(conn, d.enrollment_id, LEFT, now)
            report.finished += 1
            return
        if person.status != store.CONFIRMED or person.red_flag:
            enrollment.finish(conn, d.enrollment_id, LEFT, now)
            report.finished += 1
            return
        if not campaign.active:  # draft or paused: look again later, cheaply
            enrollment.postpone(conn, d.enrollment_id, now + PAUSED_CAMPAIGN_RECHECK, now)
            report.postponed += 1
            return
        if person.paused_until and person.paused_until > now:
            enrollment.postpone(conn, d.enrollment_id, person.paused_until, now)
            report.postponed += 1
            return
        previous = last_send.get(person.id)
        if previous is not None and previous + FREQUENCY_CAP > now:
            enrollment.postpone(conn, d.enrollment_id, previous + FREQUENCY_CAP, now)
            report.postponed += 1
            return
        zone = self._zone(person.timezone)
        window = (
            parse_window(campaign.meta.send_window) if campaign.meta.send_window else self.window
        )
        if not in_window(now, zone, window):
            enrollment.postpone(conn, d.enrollment_id, next_open(now, zone, window), now)
            report.postponed += 1
            return
        found = enrollment.next_step(campaign, d.step_index, person.facts(now))
        if found is None:
            enrollment.finish(conn, d.enrollment_id, COMPLETED, now)
            report.finished += 1
            return
        index, step, variant = found
        insert_send(
            conn,
            subscriber_id=person.id,
            campaign_id=campaign.id,
            step_id=step.id,
            variant_id=variant.id,
            kind=CAMPAIGN,
            now=now,
        )
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == person.id)
            .values(last_campaign_send_at=now)
        )
        last_send[person.id] = now
        enrollment.advance(conn, campaign, d.enrollment_id, index, now)
        report.planned += 1

    def _zone(self, name: str | None) -> ZoneInfo:
        if name:
            try:
                return ZoneInfo(name)
            except (KeyError, ValueError):
                pass
        return self.default_zone
