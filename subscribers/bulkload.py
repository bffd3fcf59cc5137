"""Many rows at once, the fast way each backend offers (the CSV import's writer, and the
webhook's on SQLite).

* SQLite: one ``executemany`` of one prepared ``INSERT`` straight on the driver, the values
  already in the form SQLAlchemy's types store them (its per-row, per-column bind processing
  was most of the import's time), then one indexed ``SELECT`` for the new subscribers' ids by
  ``email_key`` (not ``RETURNING … sort_by_parameter_order``, which SQLite can only honour one
  row at a time).
* PostgreSQL: ``COPY … FROM STDIN`` through psycopg 3. New subscribers, whose ids are needed
  back, are copied into a temporary staging table and moved by one ``INSERT … SELECT … ON
  CONFLICT DO NOTHING RETURNING``; rows that need nothing back are copied straight into their
  table.

Either way an address that another writer added after the import looked (a web signup at the
same moment) is skipped, not an error that loses the chunk: it is missing from the returned ids
(on SQLite a row counts as ours only if its random ``public_id`` is).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    MetaData,
    Table,
    Text,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from storage.bulk import bound_rows, in_values
from storage.schema import UTCDateTime
from subscribers.tables import subscribers

# The subscriber columns the import writes; rows are tuples in this order.
SUBSCRIBER_COLUMNS = (
    "public_id",
    "email",
    "email_key",
    "first_name",
    "timezone",
    "status",
    "source",
    "red_flag",
    "created_at",
    "updated_at",
    "confirmed_at",
)
_KEY = SUBSCRIBER_COLUMNS.index("email_key")
_PUBLIC_ID = SUBSCRIBER_COLUMNS.index("public_id")

# PostgreSQL's staging table: ON COMMIT DELETE ROWS, so each chunk's transaction starts with it
# empty; IF NOT EXISTS, so a pooled connection keeps the one it made.
_stage = Table(
    "import_stage",
    MetaData(),
    *(
        Column(
            name, Boolean if name == "red_flag" else UTCDateTime if name.endswith("_at") else Text
        )
        for name in SUBSCRIBER_COLUMNS
    ),
)
_CREATE_STAGE = text(
    "CREATE TEMP TABLE IF NOT EXISTS import_stage (public_id text, email text, email_key text, "
    "first_name text, timezone text, status text, source text, red_flag boolean, "
    "created_at timestamp, updated_at timestamp, confirmed_at timestamp) ON COMMIT DELETE ROWS"
)
_MOVE_STAGE = (
    postgresql.insert(subscribers)
    .from_select(list(SUBSCRIBER_COLUMNS), select(*_stage.c))
    .on_conflict_do_nothing(index_elements=[subscribers.c.email_key])
    .returning(subscribers.c.email_key, subscribers.c.id)
)


def insert_subscribers(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    """Insert new subscribers (tuples in :data:`SUBSCRIBER_COLUMNS` order); return the new id
    of each ``email_key`` inserted. A key already in the table is skipped."""
    if not rows:
        return {}
    if conn.dialect.name == "postgresql":
        conn.execute(_CREATE_STAGE)
        _copy(conn, _stage, SUBSCRIBER_COLUMNS, rows)
        return {key: sid for key, sid in conn.execute(_MOVE_STAGE)}
    _executemany(
        conn,
        subscribers,
        sqlite.insert(subscribers).on_conflict_do_nothing(),
        SUBSCRIBER_COLUMNS,
        rows,
    )
    ours = {row[_KEY]: row[_PUBLIC_ID] for row in rows}
    found = conn.execute(
        select(subscribers.c.email_key, subscribers.c.id, subscribers.c.public_id).where(
            in_values(conn, subscribers.c.email_key, ours)
        )
    )
    return {key: sid for key, sid, public_id in found if ours[key] == public_id}


def append(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert rows that need nothing back (tuples in ``columns`` order)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, columns, rows)
    else:
        _executemany(conn, table, insert(table), columns, rows)


def insert_new(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> int:
    """SQLite: insert the rows whose unique keys are not taken yet (``ON CONFLICT DO NOTHING``)
    in one driver ``executemany``; return how many were inserted."""
    if not rows:
        return 0
    stmt = sqlite.insert(table).on_conflict_do_nothing()
    return _executemany(conn, table, stmt, columns, rows)


def _executemany(
    conn: Connection,
    table: Table,
    stmt: Any,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> int:
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
    prepared = bound_rows(conn, [table.c[name] for name in columns], rows)
    order = [columns.index(name) for name in compiled.positiontup]
    if order != list(range(len(columns))):
        pick = itemgetter(*order)
        prepared = [pick(row) for row in prepared]
    # sqlite3 sums the rows an executemany changed (conflicts skipped change none)
    return max(conn.exec_driver_sql(str(compiled), prepared).rowcount, 0)


def _copy(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    prepared = bound_rows(conn, [table.c[name] for name in columns], rows)
    raw: Any = conn.connection.driver_connection  # psycopg's, in this same transaction
    names = ", ".join(table.c[name].name for name in columns)  # our own columns, never input
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in prepared:
            copy.write_row(row)
