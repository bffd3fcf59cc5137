"""One planning-and-sending pass (``clinicmail tick``), the unit APScheduler runs every minute."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection, text

from engagement.process import apply_pending
from scheduler.context import AppContext
from scheduler.dispatch import Dispatcher, DispatchReport, LinkMaker, count_ready
from scheduler.planner import Planner
from scheduler.reconcile import settle_unknown

log = logging.getLogger("clinicmail.tick")


@dataclass
class TickReport:
    now: str
    dry_run: bool
    planned: int = 0
    postponed: int = 0
    finished: int = 0
    would_send: int = 0
    settled: int = 0  # unknown sends proven delivered by a provider event
    released: int = 0  # unknown sends with no event in the reconciliation window, sent again
    delivery: DispatchReport = field(default_factory=DispatchReport)

    def as_dict(self) -> dict[str, object]:
        d = asdict(self.delivery)
        return {
            "now": self.now,
            "dry_run": self.dry_run,
            "sent": d["sent"],
            "failed": d["failed"],
            "retried": d["retried"],
            "unknown": d["unknown"],
            "cancelled": d["cancelled"],
            "requests": d["requests"],
            "planned": self.planned,
            "postponed": self.postponed,
            "finished": self.finished,
            "would_send": self.would_send,
            "settled": self.settled,
            "released": self.released,
        }


def make_dispatcher(ctx: AppContext) -> Dispatcher:
    s = ctx.settings
    domain = s.from_email.rsplit("@", 1)[-1]
    return Dispatcher(
        db=ctx.db,
        catalog=ctx.catalog,
        renderer=ctx.renderer,
        transport=ctx.transport,
        links=LinkMaker(
            make=ctx.link,
            record_url=lambda public_id: f"{s.base_url}/console/subscribers/{public_id}",
            staff_email=s.staff_email,
        ),
        from_email=s.from_email,
        from_name=s.clinic_name,
        list_domain=domain or urlsplit(s.base_url).hostname or "clinicmail.local",
    )


def run_tick(ctx: AppContext, now: datetime, *, dry_run: bool = False) -> TickReport:
    report = TickReport(now=now.isoformat(), dry_run=dry_run)
    planner = Planner(ctx.catalog, ctx.settings.zone, ctx.settings.send_window)
    dispatcher = make_dispatcher(ctx) if not dry_run else None
    if dry_run:
        # Plan inside one transaction that is rolled back: exact figures, nothing changes.
        with ctx.db.engine.connect() as conn:
            trans = conn.begin()
            try:
                # nullcontext hands the one open connection to every batch; nothing commits.
                _plan(planner, lambda: nullcontext(conn), now, report)
                report.would_send = count_ready(conn, now)
            finally:
                trans.rollback()
        return report
    # Stored webhook events first: a bounce or unsubscribe received since the last tick must
    # stop the email it concerns (CONTRACT.md: before the next tick sends anything).
    apply_pending(ctx.db.begin, now)
    with ctx.db.begin() as conn:
        report.settled, report.released = settle_unknown(conn, now)
    _plan(planner, ctx.db.begin, now, report)
    assert dispatcher is not None
    report.delivery = dispatcher.run(now)
    log.info(
        "tick done",
        extra={
            "planned": report.planned,
            "sent": report.delivery.sent,
            "failed": report.delivery.failed,
        },
    )
    return report


PLANNER_LOCK = 0x636C6E6D  # "clnm": the PostgreSQL advisory lock that elects one planner


def _planner_lock(conn: Connection) -> bool:
    """One planner at a time. PostgreSQL: a transaction-scoped advisory lock, so a crashed
    planner never holds it. SQLite: BEGIN IMMEDIATE already serialises writers."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(
        conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PLANNER_LOCK}).scalar()
    )


def _plan(planner: Planner, begin: object, now: datetime, report: TickReport) -> None:
    after = 0
    while True:
        with begin() as conn:  # type: ignore[operator]
            if not _planner_lock(conn):
                return  # another process is planning right now; it will cover these rows
            part, last = planner.plan_batch(conn, now, after)
        if last is None:
            return
        after = last
        report.planned += part.planned
        report.postponed += part.postponed
        report.finished += part.finished
