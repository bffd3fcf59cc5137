"""The real ``clinicmail`` entry point run in-process, and the CSV files the tests import."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.backends import PG_URL, reset_postgres
from tests.support.initcache import init_from_template
from tests.support.run import Run as Run  # re-exported: tests name it from here


class CLI:
    """Runs the real ``clinicmail`` entry point in-process, with its own environment and cwd."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        workdir: Path,
        db_url: str,
        *,
        init: bool = False,
        template_clock: datetime | None = None,
    ) -> None:
        self.monkeypatch = monkeypatch
        self.workdir = workdir
        self.db_url = db_url
        # Run ``clinicmail init`` before the first other command, with the environment the test
        # has set by then (its campaigns folder, its clinic name): as an operator would. With a
        # ``template_clock`` the database is a copy of one a real init made with the same
        # settings at that time (tests/support/initcache.py), which is the same and far quicker.
        self._needs_init = init
        self._template_clock = template_clock
        for name in list(os.environ):
            if (
                name.startswith("CLINICMAIL_") and not name.startswith("CLINICMAIL_TEST_")
            ) or name == "SENDGRID_API_KEY":
                monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(workdir)
        self.env("CLINICMAIL_DATABASE_URL", db_url)
        self.env("CLINICMAIL_FROM_EMAIL", "care@clinic.example")
        self.env("CLINICMAIL_BASE_URL", "https://mail.clinic.example")
        # Signups answered at once: the answer's fixed moment (0.1 s by default) hides what a
        # signup found, and tests/test_signup_timing.py probes it with the default set again;
        # in every other test it was only waiting (hundreds of signups, most of a minute).
        self.env("CLINICMAIL_SIGNUP_ANSWER_SECONDS", "0")

    def env(self, name: str, value: str | None) -> None:
        if value is None:
            self.monkeypatch.delenv(name, raising=False)
        else:
            self.monkeypatch.setenv(name, value)

    def __call__(self, *args: str) -> Run:
        if self._needs_init:
            self._needs_init = False
            copied = self._from_template()
            if args == ("init",) and copied is not None:
                return copied
            if copied is None and self.db_url == PG_URL:
                reset_postgres(PG_URL)  # a real init starts from an empty database
            if args[:1] != ("init",) and copied is None:
                # A failing init (a bad setting under test) is left for the command itself to
                # report: it reads the same settings first.
                self._run("init")
        return self._run(*args)

    @property
    def initialised(self) -> bool:
        """Whether the first command (and with it ``init``) has run."""
        return not self._needs_init

    def init_then(self, recipe: str, then: Callable[[], None]) -> Run:
        """``init``, then ``then()`` (more commands through this CLI), as one step a template
        can stand in for: ``recipe`` names what ``then`` does, the same name always meaning the
        same commands. Answers what ``init`` printed."""

        def run() -> Run:
            first = self._run("init")
            if first.code == 0:
                then()
            return first

        if not self._needs_init:
            return run()
        self._needs_init = False
        copied = self._from_template(run, recipe)
        if copied is not None:
            return copied
        if self.db_url == PG_URL:
            reset_postgres(PG_URL)
        return run()

    def _from_template(
        self, run_init: Callable[[], Run] | None = None, recipe: str = "init"
    ) -> Run | None:
        if self._template_clock is None or os.environ.get("CLINICMAIL_DATABASE_URL") != self.db_url:
            return None  # the test chose another database: it gets what a real init gives
        return init_from_template(
            self.db_url,
            self.workdir,
            run_init or (lambda: self._run("init")),
            self._template_clock,
            recipe,
        )

    def init(self) -> None:
        """Create the database now (before the test opens it directly), if not done yet."""
        if self._needs_init:
            self("init")

    def _run(self, *args: str) -> Run:
        from app.cli import main

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


CSV_HEADER = "email,first_name,symptoms,timezone,consent,consent_at,source\n"


def write_csv(path: Path, rows: list[str], *, bom: bool = False) -> Path:
    path.write_text(
        ("\ufeff" if bom else "") + CSV_HEADER + "".join(r + "\n" for r in rows), encoding="utf-8"
    )
    return path


def assert_one_line_error(run: Run, *words: str) -> None:
    """The command failed (exit 1) with one line on stderr holding every word, no traceback."""
    assert run.code == 1
    assert run.err.count("\n") == 1 and all(w in run.err for w in words), run.err
    assert "Traceback" not in run.err
