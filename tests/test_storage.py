"""Schema: migrations create exactly what the code declares, on SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import scheduler.app  # noqa: F401 - imports every package's tables
from storage import Database, metadata
from tests.support.cli import CLI


def test_init_is_idempotent(cli: CLI) -> None:
    first = cli("init")
    assert first.code == 0, first.err
    second = cli("init")
    assert second.code == 0, second.err
    assert "database ready" in second.out


def test_migrations_match_the_declared_tables(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = [d for d in compare_metadata(ctx, metadata) if "alembic_version" not in repr(d)]
        assert diff == []
    finally:
        db.dispose()


def test_sqlite_pragmas(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        db.migrate()
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA secure_delete")).scalar() == 1
            conn.rollback()
        assert {"subscribers", "sends", "enrollments", "outbox"} <= set(
            inspect(db.engine).get_table_names()
        )
    finally:
        db.dispose()


def test_signing_key_is_generated_once(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        db.migrate()
        first = db.kv_get_or_create("secret_key")
        assert len(first) > 40
        assert db.kv_get_or_create("secret_key") == first
    finally:
        db.dispose()


def test_unreachable_database_is_one_line(sqlite_cli: CLI) -> None:
    sqlite_cli.env("CLINICMAIL_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/nothing")
    run = sqlite_cli("init")
    assert run.code == 1
    assert len(run.err.strip().splitlines()) == 1
    assert "Traceback" not in run.err
