"""Engine creation with the right per-backend behaviour, and the migration runner."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.errors import ConfigError, Unavailable
from storage.keys import (
    InstallationKeys,
    KeyFileError,
    data_dir_for,
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
    {"0004", "0006", "0008", "0100", "0200", "1000", "1200", "1400", "1700", "1850", "1900", "2100"}
)
# The kv row naming the clinicmail version that last migrated the database, so an older
# version opening it can say which version it needs.
WRITTEN_BY_ROW = "schema_written_by"


def package_version() -> str:
    """This clinicmail's version (``unknown`` when run from a checkout that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clinicmail")
    except PackageNotFoundError:
        return "unknown"


def known_revisions() -> frozenset[str]:
    """Every revision this version's migrations know (loads alembic: only on a mismatch)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return frozenset(rev.revision for rev in script.walk_revisions())


class SchemaError(ConfigError, RuntimeError):
    """The database's schema is not this version's: older (upgrade), newer, or none yet."""


@dataclass(frozen=True)
class SchemaState:
    """What the database records against what this version expects."""

    found: frozenset[str]
    status: Literal["current", "empty", "older", "newer"]
    written_by: str | None = None  # the clinicmail version that last migrated it

    def describe(self) -> str:
        return "+".join(sorted(self.found)) if self.found else "none"


def utcnow() -> datetime:
    return datetime.now(UTC)


class DatabaseError(Unavailable, RuntimeError):
    """The database could not be opened or migrated; the message is meant for an operator."""


def unreachable(exc: BaseException) -> bool:
    """Did ``exc`` come from a database that cannot be reached or written just now (a refused or
    lost connection, a full pool, a locked, moved, read-only or full SQLite file) rather than
    from the statement itself? Such a request can be answered 503 and tried again later."""
    if isinstance(exc, PoolTimeout | OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


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

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        key_file: str | None = None,
        data_dir: str | None = None,
    ) -> None:
        """``key_file`` (``CLINICMAIL_SECRET_KEY_FILE``) and ``data_dir``
        (``CLINICMAIL_DATA_DIR``): where the generated keys live (default:
        :func:`storage.keys.key_file_for`)."""
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
        self.key_file = key_file_for(parsed, key_file, data_dir)
        self.data_dir = data_dir_for(parsed, data_dir)
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
        """Create or upgrade the schema to the newest revision (idempotent), then open the
        keys. ``clinicmail init`` and ``upgrade`` do this; every other command calls :meth:`open`."""
        self._private_file()
        if self.schema_revisions() != SCHEMA_REVISIONS:
            state = self.schema_state()
            if state.status == "newer":
                raise SchemaError(self._newer_message(state))
            self._upgrade()
            self._record_version()
        self._open_keys()

    def open(self) -> None:
        """Open a database whose schema is this version's, and its keys; anything else stops
        with one line (:class:`SchemaError`) and changes nothing: nothing migrates silently."""
        if self.schema_revisions() != SCHEMA_REVISIONS:
            state = self.schema_state()
            if state.status == "newer":
                raise SchemaError(self._newer_message(state))
            if state.status == "empty":
                raise SchemaError(
                    "this database has no clinicmail schema yet; run 'clinicmail init' to create it"
                )
            raise SchemaError(
                f"the database schema ({state.describe()}) is older than this version of "
                "clinicmail; run 'clinicmail upgrade' (it backs the database up first)"
            )
        self._open_keys()

    def schema_state(self) -> SchemaState:
        found = self.schema_revisions()
        if found == SCHEMA_REVISIONS:
            return SchemaState(found, "current")
        if not found:
            return SchemaState(found, "empty")
        written_by = None
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(kv.c.value).where(kv.c.key == WRITTEN_BY_ROW)).scalar()
                written_by = None if row is None else str(row)
        except DBAPIError:
            pass
        status: Literal["older", "newer"] = "newer" if found - known_revisions() else "older"
        return SchemaState(found, status, written_by)

    @staticmethod
    def _newer_message(state: SchemaState) -> str:
        unknown = "+".join(sorted(state.found - known_revisions()))
        needs = (
            f"clinicmail {state.written_by} or newer"
            if state.written_by
            else f"a newer clinicmail (one that knows schema revision {unknown})"
        )
        return (
            f"this database was upgraded by a newer clinicmail (schema {state.describe()}); "
            f"this is clinicmail {package_version()}: it needs {needs}"
        )

    def _record_version(self) -> None:
        with self.begin() as conn:
            conn.execute(kv.delete().where(kv.c.key == WRITTEN_BY_ROW))
            conn.execute(insert(kv).values(key=WRITTEN_BY_ROW, value=package_version()))

    def _open_keys(self) -> None:
        try:
            self._keys = open_keys(self.engine, self.key_file) if self.key_file else self.keys()
        except KeyFileError as exc:
            raise DatabaseError(str(exc)) from None

    def _private_file(self) -> None:
        """An SQLite file is made (or kept) readable by its owner only; its WAL and shared-
        memory files take the database file's mode when SQLite creates them."""
        path = self.file
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                mode = each.stat().st_mode if each.exists() else 0
                if mode & 0o077 and each.stat().st_uid == os.getuid():
                    each.chmod(0o600)
        except FileExistsError:
            pass
        except OSError as exc:
            raise DatabaseError(f"cannot create the database file {path}: {exc.strerror}") from None

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
