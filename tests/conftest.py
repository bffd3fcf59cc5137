"""Shared fixtures: every database test runs on SQLite and, when CLINICMAIL_TEST_POSTGRES_URL is
set (``.ci/run`` sets it), on the real PostgreSQL too."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("CLINICMAIL_TEST_POSTGRES_URL")
REQUIRE_PG = os.environ.get("CLINICMAIL_TEST_REQUIRE_POSTGRES") == "1"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


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
    """Each test runs in its own folder: a server database keeps its generated keys in the
    working directory (storage.keys), and one test's key file must not meet another's."""
    monkeypatch.chdir(tmp_path)


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
    _reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'clinicmail.db'}"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class CLI:
    """Runs the real ``clinicmail`` entry point in-process, with its own environment and cwd."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, workdir: Path, db_url: str, *, init: bool = False
    ) -> None:
        self.monkeypatch = monkeypatch
        self.workdir = workdir
        # Run ``clinicmail init`` before the first other command, with the environment the test
        # has set by then (its campaigns folder, its clinic name): as an operator would.
        self._needs_init = init
        for name in list(os.environ):
            if (
                name.startswith("CLINICMAIL_") and not name.startswith("CLINICMAIL_TEST_")
            ) or name == "SENDGRID_API_KEY":
                monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(workdir)
        self.env("CLINICMAIL_DATABASE_URL", db_url)
        self.env("CLINICMAIL_FROM_EMAIL", "care@clinic.example")
        self.env("CLINICMAIL_BASE_URL", "https://mail.clinic.example")

    def env(self, name: str, value: str | None) -> None:
        if value is None:
            self.monkeypatch.delenv(name, raising=False)
        else:
            self.monkeypatch.setenv(name, value)

    def __call__(self, *args: str) -> Run:
        if self._needs_init:
            self._needs_init = False
            if args[:1] != ("init",):
                # A failing init (a bad setting under test) is left for the command itself to
                # report: it reads the same settings first.
                self._run("init")
        return self._run(*args)

    def init(self) -> None:
        """Create the database now (before the test opens it directly), if not done yet."""
        if self._needs_init:
            self("init")

    def _run(self, *args: str) -> Run:
        from scheduler.cli import main

        out, err = io.StringIO(), io.StringIO()
        old_argv = sys.argv
        sys.argv = ["clinicmail", *args]
        code = 0
        try:
            with redirect_stdout(out), redirect_stderr(err):
                main()
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        finally:
            sys.argv = old_argv
        return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[CLI]:
    """The CLI on a database ``clinicmail init`` creates (only init creates one) before the
    test's first command, or when the test calls ``cli.init()``."""
    return CLI(monkeypatch, tmp_path, db_url, init=True)


CSV_HEADER = "email,first_name,symptoms,timezone,consent,consent_at,source\n"


def write_csv(path: Path, rows: list[str], *, bom: bool = False) -> Path:
    path.write_text(
        ("\ufeff" if bom else "") + CSV_HEADER + "".join(r + "\n" for r in rows), encoding="utf-8"
    )
    return path


@pytest.fixture
def sqlite_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str) -> CLI:
    """The CLI on SQLite only, for checks that do not depend on the database backend (on a
    database ``clinicmail init`` creates before the first command)."""
    return CLI(monkeypatch, tmp_path, sqlite_url, init=True)


@pytest.fixture
def bare_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str) -> CLI:
    """The CLI on SQLite where no database exists yet."""
    return CLI(monkeypatch, tmp_path, sqlite_url)
