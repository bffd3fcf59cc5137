"""Many values as one bound parameter: set-based statements over a batch of rows or ids.

An ``IN`` list of 1,000 ids or an ``executemany`` of 1,000 rows costs SQLAlchemy work per value
(and, on PostgreSQL, one statement per row); the helpers here send the whole batch as one bound
value that the database itself unpacks:

- PostgreSQL: one array per column, written as the text of an array literal and cast to the
  column's array type, read by ``unnest`` (``= ANY(…)`` for an IN list);
- SQLite: one JSON array, read by ``json_each``.

Either way each value is first put in the form its column stores (the column type's own bind
processing), so a datetime compares and reads back exactly as one bound the ordinary way.

Both backends then plan the statement like a join against a small table: primary-key or unique
index look-ups per row (``tests/test_tick_plans.py``). PostgreSQL may scan a target only a few
times larger than the batch instead, when its costs say that is cheaper.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    any_,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import NullType


def in_values(
    conn: Connection, col: ColumnElement[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``col IN values``, with any number of values in one statement (ids, hashes, keys)."""
    found = list(values)
    if conn.dialect.name == "postgresql":
        return col == any_(_pg_array(conn, col.type, found))
    each: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(literal(orjson.dumps(found).decode("utf-8")))
    )
    return col.in_(each.scalar_subquery())


def rows_table(
    conn: Connection, columns: Sequence[Column[Any]], rows: Iterable[Sequence[Any]], name: str
) -> FromClause:
    """``rows`` (tuples in ``columns`` order) as a derived table called ``name`` whose columns
    have the names of ``columns``: the source of an ``INSERT … SELECT`` or ``UPDATE … FROM``."""
    rows = list(rows)
    if conn.dialect.name == "postgresql":
        arrays = [_pg_array(conn, c.type, [r[i] for r in rows]) for i, c in enumerate(columns)]
        return (
            func.unnest(*arrays)
            .table_valued(*(column(c.name, c.type) for c in columns))
            .render_derived(name=name)
        )
    data = orjson.dumps(bound_rows(conn, columns, rows)).decode("utf-8")
    each = func.json_each(literal(data)).table_valued("value")
    return select(
        *(func.json_extract(each.c.value, f"$[{i}]").label(c.name) for i, c in enumerate(columns))
    ).subquery(name)


def _pg_array(conn: Connection, type_: Any, values: list[Any]) -> ColumnElement[Any]:
    """``values`` as ``CAST('{…}' AS type[])``: one text value in PostgreSQL's array syntax.

    Bound as a Python list, each element goes through SQLAlchemy's per-item processing and
    psycopg's pure-Python list dumper: about a fifth of a PostgreSQL tick went there.
    The cast of a constant is folded when the statement is planned, so ``unnest`` still knows
    how many rows the batch has (its plans: ``tests/test_tick_plans.py``)."""
    process = _binder(conn, type_)
    if process is not None:
        values = [process(v) for v in values]
    text = "{" + ",".join("NULL" if v is None else _quoted(v) for v in values) + "}"
    # Bound untyped (no ``::VARCHAR``): PostgreSQL then reads the literal as the array itself,
    # once. From a typed text value it would parse the text again for every row it compares.
    return cast(literal(text, NullType()), postgresql.ARRAY(type_))


def _quoted(value: Any) -> str:
    # An array element in double quotes, with backslash and double quote escaped: the one
    # quoting PostgreSQL's array input reads whatever the element type
    # (a bool's "True"/"False" and a datetime's "YYYY-MM-DD HH:MM:SS" are valid input too).
    if isinstance(value, bytes | bytearray):
        raise TypeError("binary values have no text form in an array literal here")
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def bound_rows(
    conn: Connection, columns: Sequence[Column[Any]], rows: Iterable[Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """``rows`` with each value as its column's type binds it for this connection's driver
    (e.g. an aware datetime as naive UTC, as text on SQLite): what the driver would be handed
    by ordinary binding, for statements that bypass it (driver ``executemany``, ``COPY``, one
    JSON value)."""
    processed = [(i, f) for i, c in enumerate(columns) if (f := _binder(conn, c.type)) is not None]
    out: list[tuple[Any, ...]] = []
    for row in rows:  # only the processed columns are touched (a few of a row's values)
        if processed:
            values = list(row)
            for i, f in processed:
                values[i] = f(values[i])
            row = values
        out.append(tuple(row))
    return out


def _binder(conn: Connection, type_: Any) -> Callable[[Any], Any] | None:
    """What ``type_`` does to a value it binds on this connection (None: nothing). A batch
    mostly repeats a few values per column (the planning moment, an import's "now"), so each
    distinct one is converted once."""
    return _memo(type_.dialect_impl(conn.dialect).bind_processor(conn.dialect))


def _memo(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    if process is None:
        return None
    seen: dict[Any, Any] = {None: None}

    def convert(value: Any) -> Any:
        if value not in seen:
            seen[value] = process(value)
        return seen[value]

    return convert
