"""Helpers shared by the list-health tests: a small list that really got email through the
outbox transport, SendGrid-shaped events for its sends, and the outbox read back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from campaigns.ledger import sends
from engagement.ingest import parse_sendgrid, store
from engagement.process import apply_pending
from storage import Database
from subscribers.tables import subscribers
from tests.support.cli import CLI, write_csv
from tests.support.signer import body_of
from tests.support.times import iso

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def people(n: int, symptoms: str = "lower_back") -> list[str]:
    return [f"p{i}@example.com,P{i},{symptoms},Europe/London,yes,," for i in range(n)]


def import_and_send(cli: CLI, tmp_path: Path, rows: list[str], at: datetime = MONDAY) -> None:
    csv = write_csv(tmp_path / "people.csv", rows)
    run = cli("subscribers", "import", str(csv), "--json")
    assert run.code == 0, run.err
    tick = cli("tick", "--now", iso(at), "--json")
    assert tick.code == 0, tick.err


def send_ids(db_url: str, step_number: int | None = None) -> dict[str, str]:
    """address → send_id of their latest campaign email."""
    db = Database(db_url)
    try:
        with db.begin() as conn:
            rows = conn.execute(
                select(subscribers.c.email, sends.c.send_id)
                .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
                .where(sends.c.kind == "campaign", sends.c.status == "sent")
                .order_by(sends.c.id)
            ).all()
    finally:
        db.dispose()
    return {email: sid for email, sid in rows}


def sg(
    kind: str, email: str, at: datetime, send_id: str, n: int = 0, **extra: Any
) -> dict[str, Any]:
    ts = int(at.timestamp())
    return {
        "email": email,
        "timestamp": ts,
        "event": kind,
        "sg_event_id": f"{kind}-{email}-{ts}-{n}",
        "sg_message_id": f"m-{send_id}",
        "send_id": send_id,
        **extra,
    }


def deliver_events(db_url: str, events: list[dict[str, Any]], now: datetime) -> int:
    """Store a batch exactly as the webhook would, then apply it; returns rows stored."""
    db = Database(db_url)
    try:
        with db.begin() as conn:
            stored = store(conn, parse_sendgrid(body_of(events)), now)
        apply_pending(db.begin, now)
    finally:
        db.dispose()
    return stored
