"""Store a batch of raw provider events, once each, as fast as the database allows.

Deduplication is the database's job: ``INSERT … ON CONFLICT DO NOTHING`` against the unique
``sg_event_id`` and the unique natural key, so a batch SendGrid re-posts (or an attacker replays
with a valid signature) changes nothing, even when two web workers receive it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, text

from engagement.events import Event, from_sendgrid
from engagement.tables import email_events
from storage.sql import chunks, dialect_insert

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
    if dialect == "postgresql":
        return _store_postgres(conn, rows)
    stored = 0
    stmt = dialect_insert(conn, email_events).on_conflict_do_nothing().returning(email_events.c.id)
    for chunk in chunks(rows, CHUNK):
        stored += len(conn.execute(stmt, chunk).all())
    return stored


# PostgreSQL: the whole batch travels as ONE json parameter and is unpacked by the server.
# A multi-row VALUES list of 500 rows × 16 columns has 8,000 placeholders, and psycopg splits
# such a statement with a regular expression on every call (too long for its statement
# cache): that, not the database, was most of the time of a 1,000-event batch.
_PG_COLUMNS = (
    ("provider", "text"),
    ("sg_event_id", "text"),
    ("natural_key", "text"),
    ("sg_message_id", "text"),
    ("event", "text"),
    ("kind", "text"),
    ("send_id", "text"),
    ("email_hash", "text"),
    ("url", "text"),
    ("machine", "boolean"),
    ("bounce_class", "text"),
    ("reason", "text"),
    ("occurred_at", "timestamp"),
    ("received_at", "timestamp"),
    ("applied_at", "timestamp"),
    ("payload", "text"),
)
_PG_SQL = (
    "INSERT INTO email_events ({cols}) SELECT {cols} "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x({defs}) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
_PG_INSERT = text(  # built once from the constant column list above: nothing from outside
    _PG_SQL.format(
        cols=", ".join(name for name, _ in _PG_COLUMNS),
        defs=", ".join(f"{name} {kind}" for name, kind in _PG_COLUMNS),
    )
)


def _naive_utc(value: Any) -> Any:
    # the columns hold naive UTC (storage.schema.UTCDateTime)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return value


def _store_postgres(conn: Connection, rows: list[dict[str, Any]]) -> int:
    payload = orjson.dumps(
        [{name: _naive_utc(row[name]) for name, _ in _PG_COLUMNS} for row in rows]
    ).decode("utf-8")
    return len(conn.execute(_PG_INSERT, {"rows": payload}).all())
