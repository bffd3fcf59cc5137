"""SQL helpers every domain shares: the dialect's INSERT (for ``ON CONFLICT``) and id chunks.

Both backends speak ``INSERT … ON CONFLICT``, but SQLAlchemy builds it from each dialect's own
``insert``; :func:`dialect_insert` picks the right one for a connection. SQLite refuses a
statement with more bound parameters than its limit (999 on older builds), so a query over an
unbounded list of ids is made one :func:`chunks` of :data:`IN_CHUNK` at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

IN_CHUNK = 900  # values per IN list: below SQLite's bound-parameter limit

T = TypeVar("T")


def dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``INSERT INTO table`` in the connection's dialect, so ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` are there on both backends."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
