"""Store a batch of raw provider events, once each, as fast as the database allows.

Deduplication is the database's job: ``INSERT … ON CONFLICT DO NOTHING`` against the unique
``sg_event_id`` and the unique natural key, so a batch SendGrid re-posts (or an attacker replays
with a valid signature) changes nothing, even when two web workers receive it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from engagement.events import Event, from_sendgrid
from engagement.tables import email_events

CHUNK = 500


class BadBatch(ValueError):
    """The body is not a JSON array of event objects (the webhook answers 400)."""


def parse_sendgrid(body: bytes) -> list[Event]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadBatch("the body is not valid JSON") from None
    if not isinstance(data, list):
        raise BadBatch("the body must be a JSON array of events")
    if not all(isinstance(item, dict) for item in data):
        raise BadBatch("every element of the array must be an event object")
    return [from_sendgrid(item) for item in data]


def _row(e: Event, now: datetime) -> dict[str, Any]:
    return {
        "provider": e.provider,
        "sg_event_id": e.sg_event_id,
        "natural_key": e.natural_key,
        "sg_message_id": e.sg_message_id,
        "event": e.event,
        "kind": e.kind.value,
        "send_id": e.send_id,
        "email_hash": e.email_hash,
        "url": e.url,
        "machine": e.machine,
        "bounce_class": e.bounce_class,
        "reason": e.reason,
        "occurred_at": e.occurred_at,
        "received_at": now,
        "applied_at": None,
        "payload": orjson.dumps(e.raw).decode("utf-8"),
    }


def store(conn: Connection, events: Sequence[Event], now: datetime) -> int:
    """Insert the events not seen before; return how many were new."""
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for e in events:
        keys = {e.natural_key} | ({"id:" + e.sg_event_id} if e.sg_event_id else set())
        if keys & seen:
            continue
        seen |= keys
        rows.append(_row(e, now))
    if not rows:
        return 0
    dialect = conn.dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stored = 0
    for start in range(0, len(rows), CHUNK):
        stmt = insert_fn(email_events).on_conflict_do_nothing().returning(email_events.c.id)
        stored += len(conn.execute(stmt, rows[start : start + CHUNK]).all())
    return stored
