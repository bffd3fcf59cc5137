"""100 concurrent signed batches of 10 events against a real uvicorn server: every post
accepted (no 5xx), no event lost (1,000 distinct rows: one event for each seeded send),
replayed batches change no counts.

Concurrency is what this proves, so all 100 batches stay and arrive at once; each carries few
events. CLINICMAIL_TEST_WEBHOOK_EVENTS=1000 runs the production-sized 100 x 1,000 (any multiple
of 10 keeps the counts exact). Speed is measured by `make bench` (bench/webhook.py), not here."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from app.context import AppContext
from app.http import create_app
from app.settings import load_settings
from engagement.process import apply_pending
from engagement.tables import email_events
from subscribers.tables import subscriber_activity, subscribers
from tests.support.cli import CLI
from tests.support.serve import real_server
from tests.support.signer import Signer
from tests.support.wait import wait_until
from tests.support.webhook_batches import KINDS, PEOPLE, bodies, post_all, seed

BATCHES = 100
# Events per batch: 100 batches x 10 cover each of the 1,000 seeded sends once, the fewest that
# still give every send its events (the totals below count per send).
PER_BATCH = int(os.environ.get("CLINICMAIL_TEST_WEBHOOK_EVENTS", "10"))


def counts(ctx: AppContext) -> dict[str, Any]:
    with ctx.db.begin() as conn:
        by_kind: dict[str, int] = dict(
            conn.execute(
                select(email_events.c.kind, func.count()).group_by(email_events.c.kind)
            ).all()
        )
        facts = conn.execute(
            select(
                subscriber_activity.c.kind,
                func.count(),
                func.sum(subscriber_activity.c.count),
            ).group_by(subscriber_activity.c.kind)
        ).all()
        statuses: dict[str, int] = dict(
            conn.execute(
                select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
            ).all()
        )
    return {"events": by_kind, "activity": sorted(map(tuple, facts)), "people": statuses}


def drain(ctx: AppContext) -> None:
    """Apply whatever the server's background applier has not yet (safe to run beside it)."""
    pending = select(func.count()).where(email_events.c.applied_at.is_(None))

    def all_applied() -> bool:
        apply_pending(ctx.db.begin, datetime.now(UTC))
        with ctx.db.begin() as conn:
            return bool(conn.execute(pending).scalar_one() == 0)

    wait_until(all_applied, timeout=120, interval=0.1, message="events were never all applied")


@pytest.mark.slow
def test_100_concurrent_signed_batches(cli: CLI) -> None:
    signer = Signer()
    cli.env("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    try:
        targets = seed(ctx.db)
        payloads = bodies(targets, BATCHES, PER_BATCH)
        with real_server(create_app(ctx)) as base:
            replies = asyncio.run(post_all(base, payloads, signer, timeout=300))
            assert [r.status_code for r in replies] == [200] * BATCHES
            assert sum(r.json()["stored"] for r in replies) == BATCHES * PER_BATCH
            with ctx.db.begin() as conn:
                stored = conn.execute(select(func.count()).select_from(email_events)).scalar()
                distinct = conn.execute(
                    select(func.count(func.distinct(email_events.c.sg_event_id)))
                ).scalar()
            assert stored == distinct == BATCHES * PER_BATCH
            drain(ctx)
            before = counts(ctx)
            assert before["events"]["opened"] == 2 * BATCHES * PER_BATCH // len(KINDS)
            assert before["people"]["unsubscribed"] > 0  # the unsubscribes were applied

            # SendGrid retries a quarter of the batches, some twice at once
            again = payloads[::4] + payloads[::20]
            replays = asyncio.run(post_all(base, again, signer, timeout=300))
            assert [r.status_code for r in replays] == [200] * len(again)
            assert sum(r.json()["stored"] for r in replays) == 0
            drain(ctx)
            assert counts(ctx) == before
        stats = cli("stats", "--json")
        assert stats.code == 0, stats.err
        totals = stats.json()["totals"]

        # each send always gets the same kinds (send = n mod 1000, kind = n mod 100), and with
        # BATCHES * PER_BATCH a multiple of 1000 every send gets its events
        def sends_with(kind: str) -> int:
            return sum(1 for s in range(PEOPLE) if KINDS[s % len(KINDS)] == kind)

        assert totals["delivered"] == sends_with("delivered")
        assert totals["unique_opens"] == sends_with("open")
        assert totals["opens"] == BATCHES * PER_BATCH * 2 // len(KINDS)
    finally:
        ctx.close()
