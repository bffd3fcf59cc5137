"""Databases as earlier versions left them: the schema at older alembic revisions, made by the
real migrations (each release's schema is a set of revisions; see storage/db.py)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from storage.db import MIGRATIONS

# Schemas earlier releases shipped: the foundation alone, then the first engagement features.
OLDER_SCHEMAS = {
    "foundation": ("0001",),
    "engagement": ("0004", "0006", "0008"),
}


def database_at(url: str, revisions: tuple[str, ...]) -> None:
    """Create the schema at exactly ``revisions`` (each an alembic target) in the database at
    ``url``, which must be empty."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            for revision in revisions:
                command.upgrade(cfg, revision)
    finally:
        engine.dispose()


FIXTURES = Path(__file__).parent.parent / "fixtures" / "schemas"
RELEASES = ("release-2026-11-21",)


def load_release(url: str, release: str) -> None:
    """Load the database an earlier release left (``tests/fixtures/schemas/<release>``, made by
    that release's own code) into the empty database at ``url``."""
    backend = make_url(url).get_backend_name()
    script = FIXTURES / release / f"{'sqlite' if backend == 'sqlite' else 'postgresql'}.sql"
    sql = script.read_text(encoding="utf-8")
    if backend == "sqlite":
        path = Path(str(make_url(url).database))
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path)
        try:
            conn.executescript(sql)
        finally:
            conn.close()
        return
    engine = create_engine(url)
    try:
        raw = engine.raw_connection()
        try:
            raw.cursor().execute(sql)
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()
