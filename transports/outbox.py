"""The ``outbox`` transport: stores each full MIME message in the database; nothing leaves.
The functions after it read the stored messages back (``clinicmail outbox list|show``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from sqlalchemy import Connection, insert, select

from storage import Database
from transports.base import Batch, Outcome, Result, Settler, Transport
from transports.mime import build_message
from transports.tables import outbox
from transports.verdicts import build_verdict


class OutboxTransport(Transport):
    name = "outbox"
    max_batch = 1000
    in_ledger = True

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, batch: Batch, settler: Settler | None = None) -> list[Result]:
        with self.db.begin() as conn:
            return self.store(conn, batch)

    def store(self, conn: Connection, batch: Batch) -> list[Result]:
        """Store every message of ``batch`` in ``conn``'s transaction. A message the email
        library refuses to build is ``REJECTED``; the others are stored."""
        now = datetime.now(UTC)
        rows = []
        results = []
        for env in batch.recipients:
            try:
                msg = build_message(batch, env)
                data = msg.as_bytes()
            except Exception as exc:
                v = build_verdict(exc)
                results.append(Result(env.send_id, v.outcome, error=v.reason))
                continue
            rows.append(
                {
                    "send_id": env.send_id,
                    "subscriber_id": env.subscriber_id,
                    "recipient": env.to,
                    "subject": str(msg["Subject"]),
                    "message": data,
                    "created_at": now,
                }
            )
            results.append(Result(env.send_id, Outcome.SENT, provider_id=f"outbox-{env.send_id}"))
        if rows:
            conn.execute(insert(outbox), rows)
        return results


def newest(db: Database, limit: int) -> Sequence[Any]:
    """The newest stored messages (rows of id, send_id, recipient, subject, created_at)."""
    with db.begin() as conn:
        return conn.execute(
            select(
                outbox.c.id,
                outbox.c.send_id,
                outbox.c.recipient,
                outbox.c.subject,
                outbox.c.created_at,
            )
            .order_by(outbox.c.id.desc())
            .limit(limit)
        ).all()


def stored_message(db: Database, message_id: int) -> bytes | None:
    """The MIME source of stored message ``message_id``; None when there is none."""
    with db.begin() as conn:
        data = conn.execute(
            select(outbox.c.message).where(outbox.c.id == message_id)
        ).scalar_one_or_none()
    return None if data is None else bytes(data)


def text_part(msg: Message) -> str:
    """The text/plain part of ``msg`` (empty when it has none)."""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""
