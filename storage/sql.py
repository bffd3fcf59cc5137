"""SQL helpers every domain shares: the dialect's INSERT (for ``ON CONFLICT``) and which ids of a
set stand in a table. (A reviewed row's state moves are ``campaigns.review``'s.)

Both backends speak ``INSERT … ON CONFLICT``, but SQLAlchemy builds it from each dialect's own
``insert``; :func:`dialect_insert` picks the right one for a connection. A list of ids of any
length travels as one bound value (:func:`storage.bulk.in_values`), never as an ``IN`` list
that could pass SQLite's bound-parameter limit.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Column, ColumnElement, Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.bulk import in_values


def dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``INSERT INTO table`` in the connection's dialect, so ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` are there on both backends."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def ids_among(
    conn: Connection, column: Column[int], ids: Iterable[int], *where: ColumnElement[bool]
) -> set[int]:
    """Which of ``ids`` stand in ``column`` of a row matching ``where`` (one query)."""
    return set(conn.execute(select(column).where(in_values(conn, column, ids), *where)).scalars())
