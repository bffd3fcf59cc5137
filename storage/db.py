"""Engine creation with the right per-backend behaviour, and the migration runner."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError

from core.errors import Unavailable
from storage.keys import (
    InstallationKeys,
    KeyFileError,
    ephemeral_keys,
    key_file_for,
    open_keys,
    read_keys,
    register,
)
from storage.schema import kv

MIGRATIONS = Path(__file__).parent / "migrations"
# What alembic_version holds once every migration has run: the newest revision of each branch,
# less those another one depends on (0003 and 0007). A database holding exactly these is up to
# date, and a command opening it skips loading alembic (about 10 MB of a sending process's
# memory). Adding a migration means updating this set: tests/test_storage.py checks it against
# what alembic records on a new database.
SCHEMA_REVISIONS = frozenset(
    {"0004", "0006", "0008", "0100", "0200", "0301", "0501", "0700", "0900"}
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class DatabaseError(Unavailable, RuntimeError):
    """The database could not be opened or migrated; the message is meant for an operator."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own transaction handling is turned off so "begin" below can say IMMEDIATE:
    # every transaction takes the write lock up front instead of failing half-way on upgrade.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA secure_delete=ON")  # erased health data is overwritten, not just unlinked
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine plus helpers. ``url`` is any SQLAlchemy URL (SQLite or PostgreSQL)."""

    def __init__(self, url: str, *, echo: bool = False, key_file: str | None = None) -> None:
        """``key_file``: where the generated keys live (default: :func:`storage.keys.key_file_for`)."""
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise DatabaseError(f"CLINICMAIL_DATABASE_URL is not a database URL: {exc}") from None
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.is_postgres = parsed.get_backend_name() == "postgresql"
        # hide_parameters: an error's message names the statement but never its values
        # (addresses, names, symptoms), so a failed query cannot put health data in a log.
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (ArgumentError, ModuleNotFoundError) as exc:
            raise DatabaseError(f"CLINICMAIL_DATABASE_URL cannot be used: {exc}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self.key_file = key_file_for(parsed, key_file)
        self._keys: InstallationKeys | None = None
        register(self.engine, self)

    @property
    def file(self) -> Path | None:
        """The SQLite database file (None for a server database or an in-memory one)."""
        if not self.is_sqlite or self.url.database in (None, "", ":memory:"):
            return None
        return Path(self.url.database).expanduser()

    def exists(self) -> bool:
        """False only for an SQLite file that is not there yet (``clinicmail init`` makes it)."""
        return self.file is None or self.file.exists()

    def keys(self) -> InstallationKeys:
        """The installation's generated keys (storage.keys); :meth:`migrate` sets them up."""
        if self._keys is None:
            if self.key_file is None:
                self._keys = ephemeral_keys()
            else:
                try:
                    found = read_keys(self.key_file)
                except KeyFileError as exc:
                    raise DatabaseError(str(exc)) from None
                if found is None:
                    raise DatabaseError(
                        f"no key file at {self.key_file}; run 'clinicmail init' to set it up"
                    )
                self._keys = found
        return self._keys

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A short transaction: commits on success, rolls back on any exception."""
        with self.engine.begin() as conn:
            yield conn

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
                conn.rollback()
            return True
        except OperationalError:
            return False

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest revision (idempotent)."""
        if self.schema_revisions() != SCHEMA_REVISIONS:
            self._upgrade()
        try:
            self._keys = open_keys(self.engine, self.key_file) if self.key_file else self.keys()
        except KeyFileError as exc:
            raise DatabaseError(str(exc)) from None

    def schema_revisions(self) -> frozenset[str]:
        """The revisions the database records (empty for a new or unreadable one)."""
        try:
            with self.engine.connect() as conn:
                found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
                return frozenset(str(v) for v in found)
        except DBAPIError:  # no such table yet, or no database: the upgrade says which
            return frozenset()

    def _upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config

        if self.is_sqlite and self.url.database not in (None, "", ":memory:"):
            Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("path_separator", "os")
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
        except OperationalError as exc:
            raise DatabaseError(f"cannot open the database: {exc.orig}") from None

    def kv_get_or_create(self, key: str, make: Any = None) -> str:
        """Return the stored value for ``key``, creating it once with ``make()`` if absent.

        Safe when several processes start together: the first insert wins, the rest read it.
        """
        make = make or (lambda: secrets.token_urlsafe(48))
        with self.begin() as conn:
            value = conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar()
            if value is not None:
                return str(value)
        try:
            with self.begin() as conn:
                conn.execute(insert(kv).values(key=key, value=make()))
        except IntegrityError:
            pass
        with self.begin() as conn:
            return str(conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()
