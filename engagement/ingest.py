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

from core.errors import InputError
from engagement.events import Event, from_sendgrid
from engagement.tables import email_events
from subscribers import bulkload


class BadBatch(InputError, ValueError):
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
    # JSON can only carry a NUL character escaped (orjson refuses a raw one): without the
    # escape anywhere in the body, no event needs the per-field search for one.
    nul_free = b"\\u0000" not in body
    return [from_sendgrid(item, nul_free=nul_free) for item in data]


COLUMNS = (
    "provider",
    "sg_event_id",
    "natural_key",
    "sg_message_id",
    "event",
    "kind",
    "send_id",
    "email_hash",
    "url",
    "machine",
    "bounce_class",
    "reason",
    "occurred_at",
    "received_at",
    "applied_at",
    "payload",
)


def store(conn: Connection, events: Sequence[Event], now: datetime) -> int:
    """Insert the events not seen before; return how many were new."""
    seen: set[str] = set()
    rows: list[tuple[Any, ...]] = []
    for e in events:
        natural_key = e.natural_key  # a hash: computed once
        keys = {natural_key} | ({"id:" + e.sg_event_id} if e.sg_event_id else set())
        if keys & seen:
            continue
        seen |= keys
        rows.append(
            (
                e.provider,
                e.sg_event_id,
                natural_key,
                e.sg_message_id,
                e.event,
                e.kind.value,
                e.send_id,
                e.email_hash,
                e.url,
                e.machine,
                e.bounce_class,
                e.reason,
                e.occurred_at,
                now,
                None,
                orjson.dumps(e.raw).decode("utf-8"),
            )
        )
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        return _store_postgres(conn, rows)
    return bulkload.insert_new(conn, email_events, COLUMNS, rows)


# PostgreSQL: the whole batch travels as ONE json parameter and is unpacked by the server.
# A multi-row VALUES list of 500 rows × 16 columns has 8,000 placeholders, and psycopg splits
# such a statement with a regular expression on every call (too long for its statement
# cache): that, not the database, was most of the time of a 1,000-event batch.
_PG_KINDS = {"machine": "boolean"} | dict.fromkeys(
    ("occurred_at", "received_at", "applied_at"), "timestamp"
)  # every other column is text
_PG_SQL = (
    "INSERT INTO email_events ({cols}) SELECT {cols} "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x({defs}) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
_PG_INSERT = text(  # built once from the constant column list above: nothing from outside
    _PG_SQL.format(
        cols=", ".join(COLUMNS),
        defs=", ".join(f"{name} {_PG_KINDS.get(name, 'text')}" for name in COLUMNS),
    )
)


def _naive_utc(value: Any) -> Any:
    # the columns hold naive UTC (storage.schema.UTCDateTime)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return value


def _store_postgres(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    payload = orjson.dumps(
        [{name: _naive_utc(v) for name, v in zip(COLUMNS, row, strict=True)} for row in rows]
    ).decode("utf-8")
    return len(conn.execute(_PG_INSERT, {"rows": payload}).all())
