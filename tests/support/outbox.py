"""What the outbox transport stored, read back."""

from __future__ import annotations

import warnings
from email import message_from_bytes
from email.message import Message

from sqlalchemy import select

from app.context import AppContext
from transports.tables import outbox

with warnings.catch_warnings():
    # Starlette asks for its `httpx2` fork; the `httpx` we have works the same for tests.
    warnings.simplefilter("ignore")
import warnings

from storage import Database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for its `httpx2` fork


def text_part(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def messages(ctx: AppContext, to: str | None = None) -> list[Message]:
    with ctx.db.begin() as conn:
        rows = conn.execute(select(outbox.c.recipient, outbox.c.message).order_by(outbox.c.id))
        return [
            message_from_bytes(bytes(m)) for r, m in rows if to is None or r.lower() == to.lower()
        ]


def outbox_messages(db_url: str) -> list[tuple[str, str, str]]:
    """(recipient, subject, text part) of every stored message, oldest first."""
    db = Database(db_url)
    try:
        with db.begin() as conn:
            rows = conn.execute(
                select(outbox.c.recipient, outbox.c.subject, outbox.c.message).order_by(outbox.c.id)
            ).all()
    finally:
        db.dispose()
    out = []
    for to, subject, raw in rows:
        msg = message_from_bytes(bytes(raw))
        part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append((to, subject, payload.decode()))
    return out
