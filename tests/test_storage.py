"""Schema: migrations create exactly what the code declares, on SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

# every package's tables: the app's, and the outbox, which the app loads only with its transport
import app.tables  # noqa: F401
import transports.tables  # noqa: F401
from storage import Database, metadata
from storage.db import SCHEMA_REVISIONS
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


def test_an_up_to_date_database_is_known_without_alembic(db_url: str) -> None:
    """The set that lets an up-to-date database skip alembic is what alembic itself records
    after running every migration; a database missing one still gets it."""
    db = Database(db_url)
    try:
        assert db.schema_revisions() == frozenset()
        db.migrate()  # a new database: alembic runs every migration and records the result
        assert db.schema_revisions() == SCHEMA_REVISIONS
        with db.engine.begin() as conn:  # one branch never applied: the next migrate applies it
            conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0100'"))
            conn.execute(text("DROP TABLE signup_requests"))
        db.migrate()
        assert db.schema_revisions() == SCHEMA_REVISIONS
        assert inspect(db.engine).has_table("signup_requests")
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
