"""One planning-and-sending pass (``clinicmail tick``), the unit APScheduler runs every minute."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection, text

from campaigns import ledger
from campaigns.ledger import count_ready
from engagement.bounce_mailbox import BounceReport, read_bounces
from engagement.process import apply_pending
from engagement.tracking import EngagementLinks
from outgoing.posting import WebhookReport, deliver_due
from scheduler.breaker import TransportBreaker
from scheduler.dispatch import Dispatcher, DispatchReport, LinkMaker
from scheduler.followups import remind_overdue
from scheduler.library import broken_now, record_broken
from scheduler.planner import Planner
from scheduler.ratelimit import TokenBucket
from scheduler.reconcile import settle_unknown
from scheduler.review_notices import send_review_notices, warn_review_due
from scheduler.runtime import Runtime
from subscribers.tokens import Tokens

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
    # Campaigns set aside because their emails cannot be built (scheduler.library).
    broken: dict[str, list[str]] = field(default_factory=dict)
    webhooks: WebhookReport = field(default_factory=WebhookReport)
    followups_reminded: int = 0  # open follow-ups past due, staff reminded this pass
    review_notices: int = 0  # emails to staff about review steps (submitted, decided)
    bounces: BounceReport = field(default_factory=BounceReport)  # read from the bounce mailbox

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
            "deferred": d["deferred"],
            "backed_off": d["backed_off"],
            "backoff_until": d["backoff_until"],
            "paused": d["paused"],
            "waiting": d["waiting"],
            "set_aside": d["set_aside"],
            "planned": self.planned,
            "postponed": self.postponed,
            "finished": self.finished,
            "would_send": self.would_send,
            "settled": self.settled,
            "released": self.released,
            "broken": [{"id": cid, "problems": p} for cid, p in self.broken.items()],
            "webhooks": asdict(self.webhooks),
            "followups_reminded": self.followups_reminded,
            "review_notices": self.review_notices,
            "bounces": asdict(self.bounces),
        }


def make_dispatcher(ctx: Runtime, *, samples: Tokens | None = None) -> Dispatcher:
    """The dispatcher as the tick runs it: the one place it is wired from the runtime.
    ``samples``: for sample messages only (``clinicmail doctor``): links signed with these
    throwaway tokens, and nothing that reads or writes delivery state (tracking links, the
    transport's health, pacing, send windows)."""
    s = ctx.settings
    domain = s.from_email.rsplit("@", 1)[-1]
    transport = ctx.transport
    live = samples is None
    if samples is None:
        make, engagement = ctx.link, EngagementLinks(ctx.db, ctx.tokens, s.base_url, s.own_tracking)
    else:
        sign = samples.make

        def make(purpose: str, public_id: str, send_id: str | None = None) -> str:
            return f"{s.base_url}/{purpose}/{sign(purpose, public_id, send_id)}"  # type: ignore[arg-type]

        engagement = None
    return Dispatcher(
        db=ctx.db,
        catalog=ctx.catalog,
        renderer=ctx.renderer,
        transport=transport,
        links=LinkMaker(
            make=make,
            record_url=lambda public_id: f"{s.base_url}/admin/subscribers/{public_id}",
            staff_email=s.staff_email,
            engagement=engagement,
        ),
        from_email=s.from_email,
        from_name=s.clinic_name,
        list_domain=domain or urlsplit(s.base_url).hostname or "clinicmail.local",
        health=TransportBreaker(ctx.db, transport.name, s.staff_email) if live else None,
        pacer=TokenBucket(s.send_rate) if live and s.send_rate > 0 else None,
        times=s.cadence if live else None,
    )


def run_tick(
    ctx: Runtime,
    now: datetime,
    *,
    dry_run: bool = False,
    dispatcher: Dispatcher | None = None,
    bounces: bool = True,
) -> TickReport:
    """One pass. ``dispatcher`` lets the bench and tests supply one built by
    :func:`make_dispatcher` with a different option (per-recipient path, an injected clock).
    ``bounces=False`` leaves the bounce mailbox to ``serve``'s own job."""
    report = TickReport(now=now.isoformat(), dry_run=dry_run)
    ctx.refresh_settings()  # clinic settings saved in the console since the last tick
    ctx.refresh_content()  # content activated in the console since the last tick
    planner = Planner(ctx.catalog, ctx.settings.cadence)
    if dispatcher is None and not dry_run:
        dispatcher = make_dispatcher(ctx)
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
        report.broken = broken_now(ctx)
        return report
    report.broken = record_broken(ctx, now)  # set aside, recorded, staff told once
    if bounces:  # SMTP bounces are stored as events too, so they are applied just below
        report.bounces = read_bounces(ctx.db, ctx.settings.bounce_mailbox, now)
    # Stored webhook events first: a bounce or unsubscribe received since the last tick must
    # stop the email it concerns (before the next tick sends anything).
    apply_pending(ctx.db.begin, now)
    with ctx.db.begin() as conn:
        report.settled, report.released = settle_unknown(conn, now)
    _plan(planner, ctx.db.begin, now, report)
    _refresh_statistics(ctx, report)
    assert dispatcher is not None
    report.delivery = dispatcher.run(now)
    # After the tick's own email: the reminder is one more staff alert, not a ledger row.
    report.followups_reminded = remind_overdue(ctx, now)
    report.review_notices = send_review_notices(ctx, now) + warn_review_due(ctx, now)
    # Outgoing webhooks last: a receiver that is slow to answer never delays an email.
    report.webhooks = deliver_due(ctx.db, now)
    # Alerts raised during this pass (an email set aside, a webhook receiver switched off) go
    # now rather than at the next tick, unless the transport is failing or paused.
    if not (report.delivery.backed_off or report.delivery.paused):
        dispatcher.deliver_alerts(now, report.delivery)
    log.info(
        "tick done",
        extra={
            "planned": report.planned,
            "sent": report.delivery.sent,
            "failed": report.delivery.failed,
        },
    )
    return report


# Rows written by one planning pass after which PostgreSQL's statistics are refreshed: without
# it, the claims that follow in the same tick are planned on stale counts (autovacuum comes
# later) and scan and sort every ready row on disk.
ANALYZE_AFTER = 5_000


def _refresh_statistics(ctx: Runtime, report: TickReport) -> None:
    if ctx.db.dialect != "postgresql" or report.planned + report.postponed < ANALYZE_AFTER:
        return
    with ctx.db.begin() as conn:
        ledger.analyze(conn)


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
    after: tuple[datetime, int] | None = None
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
