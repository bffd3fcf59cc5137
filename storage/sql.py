"""SQL helpers every domain shares: the dialect's INSERT (for ``ON CONFLICT``), which ids of a
set stand in a table, and the compare-and-set move of a reviewed row's ``state``.

Both backends speak ``INSERT … ON CONFLICT``, but SQLAlchemy builds it from each dialect's own
``insert``; :func:`dialect_insert` picks the right one for a connection. A list of ids of any
length travels as one bound value (:func:`storage.bulk.in_values`), never as an ``IN`` list
that could pass SQLite's bound-parameter limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Column, ColumnElement, Connection, Table, select, update
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


class Reviewed(Protocol):
    """A row that moves through review states: its id and the state it was read in."""

    @property
    def id(self) -> str: ...

    @property
    def state(self) -> str: ...


def move_state(
    conn: Connection,
    table: Table,
    what: str,
    row: Reviewed,
    frm: tuple[str, ...],
    to: str,
    now: datetime,
    error: type[Exception],
    **values: Any,
) -> None:
    """``row.state`` → ``to`` in ``table`` (with ``updated_at`` and ``values``), only if the
    row is still in one of ``frm``: nobody moved it meanwhile. Otherwise ``error`` says "this
    ``what`` is <state>; it cannot become <to>"."""
    done = conn.execute(
        update(table)
        .where(table.c.id == row.id, table.c.state.in_(frm))
        .values(state=to, updated_at=now, **values)
    )
    if not done.rowcount:
        raise error(
            f"this {what} is {row.state.replace('_', ' ')}; it cannot become {to.replace('_', ' ')}"
        )
