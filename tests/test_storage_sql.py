"""The shared SQL helpers: the dialect's INSERT … ON CONFLICT and ids among a set (review-state
moves are campaigns.review's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, select

from storage import Database, UTCDateTime
from storage.sql import dialect_insert, ids_among

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class _Row:
    id: str
    state: str


class _Refused(ValueError):
    pass


def test_insert_ignore_and_ids_among(db_url: str) -> None:
    meta = MetaData()
    table = Table(
        "sql_helper_probe",
        meta,
        Column("id", String(8), primary_key=True),
        Column("n", Integer, nullable=False),
        Column("state", String(16), nullable=False),
        Column("updated_at", UTCDateTime()),
    )
    db = Database(db_url)
    try:
        with db.begin() as conn:
            meta.create_all(conn)
            rows = [{"id": f"r{n}", "n": n, "state": "draft"} for n in range(1, 2001)]
            conn.execute(dialect_insert(conn, table).on_conflict_do_nothing(), rows)
            # The same keys again change nothing and raise nothing.
            again = [{**r, "state": "other"} for r in rows[:5]]
            conn.execute(dialect_insert(conn, table).on_conflict_do_nothing(), again)
            assert conn.execute(select(table.c.state).where(table.c.id == "r1")).scalar() == "draft"
            wanted = [*range(0, 2100, 3)]  # more than SQLite's bound-parameter limit, some absent
            assert ids_among(conn, table.c.n, wanted, table.c.n > 1000) == {
                n for n in wanted if 1000 < n <= 2000
            }
            meta.drop_all(conn)
    finally:
        db.dispose()
