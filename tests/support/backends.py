"""The database backends every database test runs on: SQLite always, and the real PostgreSQL
named by CLINICMAIL_TEST_POSTGRES_URL when it is set (``.ci/run`` sets it).

Under pytest-xdist each worker gets a database of its own, named after the configured one with
the worker's id appended (``test`` → ``test_gw0``), created on first use."""

from __future__ import annotations

import os
from functools import cache

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _worker_url(base: str | None) -> str | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not base or not worker:
        return base
    url = make_url(base)
    return url.set(database=f"{url.database}_{worker}").render_as_string(hide_password=False)


PG_URL = _worker_url(os.environ.get("CLINICMAIL_TEST_POSTGRES_URL"))
REQUIRE_PG = os.environ.get("CLINICMAIL_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def sqlite_only(why: str) -> pytest.MarkDecorator:
    """Run a database test on SQLite alone (its ``db_url``, and so its ``cli``), saying why.

    A test runs on PostgreSQL too when what it checks passes through SQL whose behaviour could
    differ there: storing, deduplicating, locking, counting, dates in queries, a NUL byte, a
    migration. A test that checks what is decided before anything is stored or after it is read
    (a signature, a header, a page's words, a MIME line, a role) asks the same of either
    database, and repeating it on PostgreSQL finds nothing new: those say so with this mark,
    and ``why`` names the reason at the test. Each behaviour keeps at least one test on both.
    """
    if not why.strip():
        raise ValueError("sqlite_only needs the reason the test does not depend on the database")
    return pytest.mark.parametrize("db_url", [BACKENDS[0]], indirect=True)


def admin_execute(url: str, *statements: str) -> None:
    """Run statements outside a transaction on the server's maintenance database (``postgres``):
    creating, copying and dropping databases cannot run inside one, nor while connected to them."""
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


@cache
def ensure_database(url: str) -> None:
    """Create the database ``url`` names if the server does not have it yet (once a process)."""
    name = make_url(url).database
    if not database_exists(url, name):
        admin_execute(url, f'CREATE DATABASE "{name}"')


def database_exists(url: str, name: str | None) -> bool:
    engine = create_engine(make_url(url).set(database="postgres"))
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
    finally:
        engine.dispose()
    return found is not None


def reset_postgres(url: str) -> None:
    ensure_database(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
