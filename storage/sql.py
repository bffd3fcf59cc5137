"""SQL helpers every domain shares: the dialect's INSERT (for ``ON CONFLICT``), id chunks and
the compare-and-set move of a reviewed row's ``state``.

Both backends speak ``INSERT … ON CONFLICT``, but SQLAlchemy builds it from each dialect's own
``insert``; :func:`dialect_insert` picks the right one for a connection. SQLite refuses a
statement with more bound parameters than its limit (999 on older builds), so a query over an
unbounded list of ids is made one :func:`chunks` of :data:`IN_CHUNK` at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Column, ColumnElement, Connection, Table, select, update
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


def ids_among(
    conn: Connection, column: Column[int], ids: Iterable[int], *where: ColumnElement[bool]
) -> set[int]:
    """Which of ``ids`` stand in ``column`` of a row matching ``where`` (a query per chunk)."""
    found: set[int] = set()
    for chunk in chunks(list(ids)):
        found.update(conn.execute(select(column).where(column.in_(chunk), *where)).scalars())
    return found


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
