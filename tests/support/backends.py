"""The database backends every database test runs on: SQLite always, and the real PostgreSQL
named by CLINICMAIL_TEST_POSTGRES_URL when it is set (``.ci/run`` sets it)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("CLINICMAIL_TEST_POSTGRES_URL")
REQUIRE_PG = os.environ.get("CLINICMAIL_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
