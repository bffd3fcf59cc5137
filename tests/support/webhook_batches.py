"""Shared by the webhook load test and `bench/webhook.py`: seeded subscribers with one sent
email each, and SendGrid-shaped event batches for them, posted all at once and signed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import insert, select

from campaigns.ledger import sends
from storage import Database
from subscribers.tables import subscribers
from tests.support.signer import Signer

# One in a hundred events is each of: click, bounce (soft: keeps the list intact across the
# batches), unsubscribe; two are opens; the rest are delivery-side events.
KINDS = ("processed", "delivered", "deferred", "delivered", "processed") * 19 + (
    "open",
    "open",
    "click",
    "bounce",
    "unsubscribe",
)
PEOPLE = 1000
T0 = 1795000000


def seed(db: Database) -> list[tuple[str, str]]:
    """PEOPLE confirmed subscribers with one sent campaign email each: (address, send_id)."""
    now = datetime(2026, 11, 16, 10, tzinfo=UTC)
    people = [f"load{i}@example.com" for i in range(PEOPLE)]
    with db.begin() as conn:
        conn.execute(
            insert(subscribers),
            [
                {
                    "public_id": uuid.uuid4().hex,
                    "email": e,
                    "email_key": e,
                    "status": "confirmed",
                    "red_flag": False,
                    "created_at": now,
                    "updated_at": now,
                    "confirmed_at": now,
                }
                for e in people
            ],
        )
        ids = dict(conn.execute(select(subscribers.c.email_key, subscribers.c.id)).all())
        rows = [
            {
                "send_id": uuid.uuid4().hex,
                "subscriber_id": ids[e],
                "campaign_id": "spasm-education",
                "step_id": "why-your-back-locks-up",
                "variant_id": "default",
                "kind": "campaign",
                "status": "sent",
                "attempts": 1,
                "next_attempt_at": now,
                "created_at": now,
                "sent_at": now,
            }
            for e in people
        ]
        conn.execute(insert(sends), rows)
    return [(e, str(r["send_id"])) for e, r in zip(people, rows, strict=True)]


def bodies(targets: list[tuple[str, str]], batches: int, per_batch: int) -> list[bytes]:
    out = []
    for b in range(batches):
        events = []
        for i in range(per_batch):
            n = b * per_batch + i
            email, send_id = targets[n % len(targets)]
            kind = KINDS[n % len(KINDS)]
            event: dict[str, Any] = {
                "email": email,
                "timestamp": T0 + n,
                "event": kind,
                "sg_event_id": f"load-{n}",
                "sg_message_id": f"{send_id}.filter0001.{n}",
                "send_id": send_id,
                "campaign_id": "spasm-education",
            }
            if kind == "click":
                event["url"] = "https://clinic.example/book"
            if kind == "bounce":
                event["type"] = "blocked"
            events.append(event)
        out.append(orjson.dumps(events))
    return out


async def post_all(
    base: str, payloads: list[bytes], signer: Signer, *, timeout: float = 600
) -> list[httpx.Response]:
    """Post every payload at once, one connection each, signed as SendGrid signs."""
    signed = [(p, signer.headers(p)) for p in payloads]  # signing is SendGrid's cost, not ours
    limits = httpx.Limits(max_connections=len(payloads), max_keepalive_connections=len(payloads))
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
        return await asyncio.gather(
            *(client.post("/webhooks/sendgrid", content=p, headers=h) for p, h in signed)
        )
