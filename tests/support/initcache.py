"""Databases made once by ``clinicmail init`` and copied for each test that needs one.

``init`` (migrations and the campaign library) is the costliest step of most tests, and its
result depends only on the settings it reads. So the first test with a given set of settings runs
the real ``init`` in a folder of its own, and every test with the same settings gets a copy:

* SQLite: the database file and the files beside it (its key file) are copied;
* PostgreSQL: ``CREATE DATABASE … TEMPLATE`` copies a template database the real ``init`` filled,
  and the key file it wrote in its working directory is copied into the test's.

What the settings are: every ``CLINICMAIL_*`` variable but the database URL and the test
switches, ``SENDGRID_API_KEY``, and the ``.env`` file in the working directory. A test whose
settings point into its own folder (a campaigns folder it wrote) runs the real ``init``: its
result could not be shared. Templates live for one test process; the PostgreSQL ones left by an
earlier run are dropped when the next run starts (:func:`sweep_postgres_templates`).

The real ``init`` that makes a template runs on a copy of a database ``Database.migrate`` made
once per process (:func:`_schema`): migrating is the same whatever the settings, and ``init``
migrates before anything else, so it finds that copy as it would have left an empty database.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from secrets import token_hex

import psycopg
import time_machine
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.support.backends import PG_URL, admin_execute, database_exists
from tests.support.pg_snapshot import Snapshot
from tests.support.run import Run

_ROOT = Path(tempfile.mkdtemp(prefix="clinicmail-init-"))
atexit.register(shutil.rmtree, _ROOT, True)
DB_FILE = "clinicmail.db"
STATE_HOME, STATE = "XDG_STATE_HOME", "state"

# fingerprint → the folder the real init ran in, its URL and what it printed (None: init failed
# there, so each test runs its own)
_made: dict[str, tuple[Path, str, Run] | None] = {}
_schemas: dict[str, tuple[Path, str]] = {}  # fingerprint → a schema's folder and URL
# fingerprint → the PostgreSQL template's rows, loaded into the worker's database in place
_snapshots: dict[str, Snapshot] = {}


# Where mail goes and where bounces and DNS answers come from: a test's own loopback server on
# a port of its own. ``init`` neither contacts these nor stores or prints them, so a template
# made with one port stands in for another. Only a valid loopback port is generalised: a test
# of a bad value keeps a template (and so an ``init``) of its own.
_ENDPOINTS = frozenset(
    {
        "CLINICMAIL_SMTP_URL",
        "CLINICMAIL_SENDGRID_HOST",
        "CLINICMAIL_BOUNCE_MAILBOX",
        "CLINICMAIL_DNS_RESOLVER",
    }
)
_LOOPBACK_PORT = re.compile(r"\b127\.0\.0\.1:(\d{1,5})\b")


def _any_port(value: str) -> str:
    return _LOOPBACK_PORT.sub(
        lambda m: "127.0.0.1:<port>" if 0 < int(m[1]) < 65536 else m[0], value
    )


def _settings(workdir: Path) -> list[tuple[str, str]] | None:
    """The settings init reads, or None when they refer to the test's own folder."""
    items = sorted(
        (name, _any_port(value) if name in _ENDPOINTS else value)
        for name, value in os.environ.items()
        if (
            name.startswith("CLINICMAIL_")
            and not name.startswith("CLINICMAIL_TEST_")
            and name != "CLINICMAIL_DATABASE_URL"
        )
        or name == "SENDGRID_API_KEY"
    )
    dotenv = workdir / ".env"
    if dotenv.exists():
        items.append((".env", dotenv.read_text(encoding="utf-8")))
    own = str(workdir)
    for _, value in items:
        relative = value and "://" not in value and not Path(value).is_absolute()
        if own in value or (relative and (workdir / value).exists()):
            return None
    return items


def _fingerprint(backend: str, settings: list[tuple[str, str]], recipe: str) -> str:
    return hashlib.sha256(repr((backend, settings, recipe)).encode()).hexdigest()[:12]


@contextmanager
def _as_if(workdir: Path, url: str) -> Iterator[None]:
    """Run with another working directory, database URL and per-user state directory (where a
    server database's key file goes), then put all three back."""
    changed = {"CLINICMAIL_DATABASE_URL": url, STATE_HOME: str(workdir / STATE)}
    old_cwd, old_env = Path.cwd(), {name: os.environ.get(name) for name in changed}
    os.chdir(workdir)
    os.environ.update(changed)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        for name, value in old_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _template_db(fp: str) -> str:
    assert PG_URL
    return f"{make_url(PG_URL).database}_t{fp}"


def _new_template_db(fp: str, copy_of: str | None = None) -> str:
    """A new database named for the fingerprint (a copy of the database ``copy_of`` when
    given), on the configured server: its URL."""
    assert PG_URL
    name = _template_db(fp)
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{copy_of}"' if copy_of else "")
    admin_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', create)
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def sweep_postgres_templates(base_url: str) -> None:
    """Drop the template databases earlier runs left behind, and the test databases they renamed
    out of the way: every ``<base>_t<12 hex digits>`` and ``<base>_gw<N>_t<12 hex digits>``
    beside the configured test database ``<base>``.

    Called once, at the start of a run, before any test process makes a template (the
    controller's session start, before pytest-xdist starts its workers). Dropping a database
    makes PostgreSQL checkpoint and wait for it: one at a time in the middle of a run, with the
    other workers' writes to flush, each took about a second, and a worker's first test waited
    15-20 s for its sweep; here, before anything is written, the whole sweep takes a moment."""
    base = make_url(base_url).database or ""
    pattern = re.compile(rf"{re.escape(base)}(_gw\d+)?_t[0-9a-f]{{12}}")
    engine = create_engine(make_url(base_url).set(database="postgres"))
    try:
        with engine.connect() as conn:
            names = conn.execute(text("SELECT datname FROM pg_database")).scalars().all()
    except OperationalError:
        return  # no server to sweep: the PostgreSQL tests say so themselves
    finally:
        engine.dispose()
    stale = [name for name in names if pattern.fullmatch(name)]
    if stale:
        admin_execute(base_url, *(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in stale))


def _schema(backend: str, clock: datetime) -> tuple[Path, str]:
    """A database with this version's schema and no rows, and its key file, made once per
    process and clock by ``Database.migrate`` (the key file says when it was made): its folder
    and URL. Every template starts as a copy of it,
    and ``init`` finds the schema current, as it does on a database it made a moment before:
    ``init`` migrates whatever it finds first, so running it on this copy gives what running
    it on an empty database does."""
    from storage import Database

    fp = _fingerprint(backend, [], f"schema at {clock.isoformat()}")
    if fp in _schemas:
        return _schemas[fp]
    folder = _ROOT / fp
    shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
    folder.mkdir()
    url = f"sqlite:///{folder / DB_FILE}" if backend == "sqlite" else _new_template_db(fp)
    with _as_if(folder, url), time_machine.travel(clock, tick=True):
        db = Database(url)
        try:
            db.migrate()
        finally:
            db.dispose()
    _schemas[fp] = folder, url
    return folder, url


def _make(
    fp: str, backend: str, workdir: Path, run_init: Callable[[], Run], clock: datetime
) -> tuple[Path, str, Run] | None:
    folder = _ROOT / fp
    # The real init runs on a copy of the schema alone: migrating is the same for any settings.
    schema_folder, schema_url = _schema(backend, clock)
    shutil.copytree(schema_folder, folder)
    if (workdir / ".env").exists():
        shutil.copy2(workdir / ".env", folder / ".env")
    if backend == "sqlite":
        url = f"sqlite:///{folder / DB_FILE}"
    else:
        url = _new_template_db(fp, copy_of=make_url(schema_url).database)
    # A little before the test's own clock, so nothing the library records lies in its future.
    with _as_if(folder, url), time_machine.travel(clock, tick=True):
        run = run_init()
    return (folder, url, run) if run.code == 0 else None


def _copy_files(folder: Path, workdir: Path, db_path: Path | None) -> None:
    for item in folder.iterdir():
        if item.name == ".env":
            continue
        if db_path is not None and item.name.startswith(DB_FILE):
            shutil.copy2(item, db_path.with_name(db_path.name + item.name[len(DB_FILE) :]))
        elif item.name == STATE:
            target = Path(os.environ.get(STATE_HOME) or workdir / STATE)
            shutil.copytree(item, target, dirs_exist_ok=True)
        elif item.is_dir():
            shutil.copytree(item, workdir / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, workdir / item.name)


def _load_rows(fp: str, template_url: str, db_url: str) -> bool:
    """The template's rows loaded into the test's database when its schema is the template's
    (tests/support/pg_snapshot.py); False when the whole database must be copied."""
    if fp not in _snapshots:
        _snapshots[fp] = Snapshot.take(template_url)
    try:
        return _snapshots[fp].load_into(db_url)
    except psycopg.OperationalError:
        return False  # no such database yet: copying the template creates it


def init_from_template(
    db_url: str,
    workdir: Path,
    run_init: Callable[[], Run],
    clock: datetime,
    recipe: str = "init",
) -> Run | None:
    """Give the database at ``db_url`` what ``run_init`` would with the current settings, by
    copying a template made once, and answer what its ``init`` printed (with this database's
    URL in it); None when this test must run the real ``init`` itself.

    ``recipe`` names what ``run_init`` does beyond ``init`` (e.g. "staff": init, then one account
    per role): templates with different recipes are different templates."""
    url = make_url(db_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        db_path: Path | None = Path(url.database)
    elif backend == "postgresql" and db_url == PG_URL:
        db_path = None
    else:
        return None
    settings = _settings(workdir)
    if settings is None:
        return None
    fp = _fingerprint(backend, settings, recipe)
    if fp not in _made:
        _made[fp] = _make(fp, backend, workdir, run_init, clock)
    made = _made[fp]
    if made is None:
        return None
    folder, template_url, printed = made
    if db_path is None and not _load_rows(fp, template_url, db_url):
        assert PG_URL
        template, target = _template_db(fp), url.database
        # Both names are made here from a hash and the configured test database's name.
        statements = [
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"  # noqa: S608
            f" WHERE datname IN ('{template}', '{target}') AND pid <> pg_backend_pid()"
        ]
        if database_exists(PG_URL, target):
            # Renamed out of the way, not dropped: dropping a database makes the server
            # checkpoint and wait (about a second in the middle of a run); the next run's sweep
            # drops it with the templates, before anything is written.
            statements.append(f'ALTER DATABASE "{target}" RENAME TO "{target}_t{token_hex(6)}"')
        statements.append(f'CREATE DATABASE "{target}" TEMPLATE "{template}"')
        admin_execute(PG_URL, *statements)
    _copy_files(folder, workdir, db_path)
    shown, ours = (make_url(u).render_as_string(hide_password=True) for u in (template_url, db_url))
    return Run(0, printed.out.replace(shown, ours), printed.err.replace(shown, ours))


def migrate_from_template(db_url: str, workdir: Path, clock: datetime) -> bool:
    """Give the database at ``db_url`` the schema ``Database.migrate`` makes, and no rows, by
    copying a template made once per process with the current settings (as
    :func:`init_from_template` does for ``init``); False when the test must migrate it itself."""
    from storage import Database

    def migrate() -> Run:
        db = Database(os.environ["CLINICMAIL_DATABASE_URL"])
        try:
            db.migrate()
        finally:
            db.dispose()
        return Run(0, "", "")

    return init_from_template(db_url, workdir, migrate, clock, recipe="migrate") is not None
