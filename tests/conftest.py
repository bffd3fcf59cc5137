"""Shared fixtures: every database test runs on SQLite and, when CLINICMAIL_TEST_POSTGRES_URL is
set (``.ci/run`` sets it), on the real PostgreSQL too."""

from __future__ import annotations

import gc
import importlib
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from hypothesis import settings as hypothesis_settings

from staff import passwords
from storage import Database
from tests.support.backends import BACKENDS, PG_URL, REQUIRE_PG, reset_postgres
from tests.support.cli import CLI
from tests.support.initcache import migrate_from_template, sweep_postgres_templates
from tests.support.sqlcache import share_compiled_statements

# The fixtures the helper modules define, for every test (tests import helpers, never fixtures).
pytest_plugins = [
    "tests.support.browser",
    "tests.support.console",
    "tests.support.imap",
    "tests.support.sendgrid",
    "tests.support.smtp",
]

# Staff passwords are hashed in-process with argon2's own profile for tests (argon2id, one pass
# over 8 KiB) instead of the production parameters (tens of milliseconds and 64 MiB a hash):
# the suite signs in and creates accounts hundreds of times, through the same functions and the
# same hashing slots. Servers the tests start as subprocesses keep the production parameters.
_CHEAP_HASHER = PasswordHasher.from_parameters(CHEAPEST)
passwords._hasher = lambda: _CHEAP_HASHER  # type: ignore[assignment]

# Every engine the project makes in a test process compiles into one statement cache
# (tests/support/sqlcache.py): a server compiles each statement once; the suite made hundreds
# of engines and compiled them all again in each.
share_compiled_statements()


# The property tests (Hypothesis) are a gate, so by default they try the same examples on every
# run: a run fails only for a change, never for a new draw (a draw once found a real bug in the
# send window only some runs made). `make test-explore` draws new examples, more of them, to
# look for bugs; an example it finds is pinned with ``@example`` before it is fixed.
hypothesis_settings.register_profile("gate", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("explore", max_examples=2_000, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("CLINICMAIL_TEST_HYPOTHESIS", "gate"))


# In-process tests run on a fixed, ticking clock: many import subscribers "now" and then tick at
# fixed dates (Monday 23 November 2026 and after), which must stay in the future whatever day
# the suite runs. Subprocesses keep the real clock; tests that need it mark `real_clock`.
TEST_TODAY = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("real_clock"):
        yield
        return
    with time_machine.travel(TEST_TODAY, tick=True):
        yield


@pytest.fixture(autouse=True)
def _own_workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test runs in its own folder, with its own per-user state directory: a server
    database keeps its generated keys there (storage.keys), and one test's key file must not
    meet another's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'clinicmail.db'}"
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail(
                "CLINICMAIL_TEST_REQUIRE_POSTGRES=1 but CLINICMAIL_TEST_POSTGRES_URL is not set"
            )
        pytest.skip("set CLINICMAIL_TEST_POSTGRES_URL to run the PostgreSQL tests")
    if not {"cli", "migrated_db"} & set(request.fixturenames):
        # With the ``cli`` or ``migrated_db`` fixture the database is made from a template's
        # rows (or really, on an emptied database): emptying it here would be a second, wasted
        # second.
        reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def migrated_db(request: pytest.FixtureRequest, tmp_path: Path, db_url: str) -> Iterator[Database]:
    """A database with this version's schema and no rows, as ``Database.migrate`` leaves a new
    one: a copy of one it made once per process (tests/support/initcache.py), or migrated here
    when the test's settings cannot share one. For tests of what lies under the commands; in a
    test that runs commands too (``cli``), the database their ``init`` made."""
    if "cli" in request.fixturenames:
        # The test's commands make (or made) the database: ``init`` migrates it first.
        request.getfixturevalue("cli").init()
        copied = True
    else:
        clock = _template_clock(request)
        copied = clock is not None and migrate_from_template(db_url, tmp_path, clock)
    if not copied and db_url == PG_URL:
        reset_postgres(PG_URL)
    db = Database(db_url)
    if copied:
        db.open()
    else:
        db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'clinicmail.db'}"


def _template_clock(request: pytest.FixtureRequest) -> datetime | None:
    """When a copied database may stand in for the test's own ``init``: on the suite's fixed
    clock, as of a few minutes before the test's today (tests/support/initcache.py)."""
    if request.node.get_closest_marker("real_clock"):
        return None
    return TEST_TODAY - timedelta(minutes=5)


@pytest.fixture
def cli(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> CLI:
    """The CLI on a database ``clinicmail init`` creates (only init creates one) before the
    test's first command, or when the test calls ``cli.init()``."""
    return CLI(monkeypatch, tmp_path, db_url, init=True, template_clock=_template_clock(request))


@pytest.fixture
def sqlite_cli(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sqlite_url: str,
) -> CLI:
    """The CLI on SQLite only, for checks that do not depend on the database backend (on a
    database ``clinicmail init`` creates before the first command)."""
    return CLI(
        monkeypatch, tmp_path, sqlite_url, init=True, template_clock=_template_clock(request)
    )


@pytest.fixture
def bare_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str) -> CLI:
    """The CLI on SQLite where no database exists yet."""
    return CLI(monkeypatch, tmp_path, sqlite_url)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The root logger's handlers and level put back after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The controller drops the PostgreSQL templates earlier runs left, before pytest-xdist
    starts the workers that make this run's (tests/support/initcache.py).

    Each worker but the first imports the test modules from its own starting point before
    collecting them. On a fresh checkout each module is first compiled, with its asserts
    rewritten (about three quarters of collecting); the workers collect at the same moment, so
    in the same order they all did all of it. Worker k of n starts k/n of the way along the
    list, and finds the part after its share already written to ``__pycache__`` by the worker
    that started there. What fails to import here is left for the collection to report."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:  # the run's controller (or its only process), before any test process
        if PG_URL:
            sweep_postgres_templates(PG_URL)
        return
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker.removeprefix("gw"))
    if index == 0:
        return
    modules = sorted(Path(__file__).parent.glob("test_*.py"))
    start = len(modules) * index // count
    for path in modules[start:] + modules[:start]:
        try:
            importlib.import_module(f"tests.{path.stem}")
        except Exception:  # noqa: S112 - reported when collected
            continue


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that drives Chromium is marked ``browser``, so ``make test-fast`` can leave
    them out without each test saying so."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What importing and collecting made lives for the whole run: frozen, the collector stops
    walking it on every full collection (a few percent of a worker's CPU). And the youngest
    generation is collected every 20,000 allocations instead of every 700: a test allocates
    millions of short-lived objects (rows, statements, pages), and the default threshold spent
    about a tenth of an in-process test's CPU walking them (measured on four database-heavy
    test files: 36.5 s of CPU before, 32.9 s after)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """At the end, what the run made is frozen too: pytest collects garbage once more when it
    stops, and with a run's worth of objects alive that last full collection took seconds of
    each worker's time, with the other worker waiting for it."""
    gc.freeze()
