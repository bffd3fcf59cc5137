"""Small shared state kept as one JSON row of the ``kv`` table (the transport's circuit
breaker, the complaint-rate pause): every process reads the same row, and changes happen under
a row lock (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers), so two processes never overwrite each other's update.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any, Self

from sqlalchemy import Connection, select, update

from storage.schema import kv
from storage.sql import dialect_insert


class JsonState:
    """Mixin for a dataclass stored as JSON; unknown keys in stored JSON are ignored, so a
    newer process's extra fields never stop an older one from reading the row."""

    @classmethod
    def load(cls, raw: str | None) -> Self:
        if not raw:
            return cls()
        data: dict[str, Any] = json.loads(raw)
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # type: ignore[call-overload]


def read(conn: Connection, key: str) -> str | None:
    """The stored value, or None when the row does not exist yet."""
    value = conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar()
    return None if value is None else str(value)


def read_locked(conn: Connection, key: str, initial: str) -> str:
    """Create the row with ``initial`` if absent, then read it under a row lock for an update
    in the same transaction (see :func:`write`)."""
    query = select(kv.c.value).where(kv.c.key == key)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    value = conn.execute(query).scalar()
    if value is None:  # once per key: after that the row is there (a statement less a tick)
        conn.execute(
            dialect_insert(conn, kv)
            .values(key=key, value=initial)
            .on_conflict_do_nothing(index_elements=[kv.c.key])
        )
        value = conn.execute(query).scalar_one()
    return str(value)


def write(conn: Connection, key: str, value: str) -> None:
    conn.execute(update(kv).where(kv.c.key == key).values(value=value))
