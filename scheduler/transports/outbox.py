"""The ``outbox`` transport: stores each full MIME message in the database; nothing leaves."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from scheduler.tables import outbox
from scheduler.transports.base import Batch, Outcome, Result, Transport
from scheduler.transports.mime import build_message
from storage import Database


class OutboxTransport(Transport):
    name = "outbox"
    max_batch = 1000

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, batch: Batch) -> list[Result]:
        now = datetime.now(UTC)
        rows = []
        for env in batch.recipients:
            msg = build_message(batch, env)
            rows.append(
                {
                    "send_id": env.send_id,
                    "subscriber_id": env.subscriber_id,
                    "recipient": env.to,
                    "subject": str(msg["Subject"]),
                    "message": msg.as_bytes(),
                    "created_at": now,
                }
            )
        with self.db.begin() as conn:
            conn.execute(insert(outbox), rows)
        return [
            Result(env.send_id, Outcome.SENT, provider_id=f"outbox-{env.send_id}")
            for env in batch.recipients
        ]
