"""Debian's chromium driven by Playwright against a real `clinicmail serve`.

The tests drive Debian's headless build of it (package ``chromium-headless-shell``, built from
the same source: the same Blink, V8 and network stack, without the window and GPU layers a test
never shows). It is what Playwright itself runs for headless tests, and it costs about 40% less
CPU per page than the full browser, which on a two-core machine is minutes of the suite. The
pages patients see (tests/test_browser_pages.py) are also opened in the full ``chromium``, as
their own browsers are (:func:`launch`, ``FULL_CHROMIUM``)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import pytest
import time_machine
from sqlalchemy import create_engine, text

from tests.support.console import PASSWORD, STAFF
from tests.support.initcache import init_from_template
from tests.support.run import Run
from tests.support.serve import free_port, serve_env, spawn_web, steady_port, wait_healthy
from tests.support.wait import wait_until

HEADLESS_CHROMIUM = shutil.which("chromium-headless-shell") or "/usr/bin/chromium-headless-shell"
FULL_CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE = os.environ.get("CLINICMAIL_TEST_REQUIRE_BROWSER") == "1"


def launch(executable: str, package: str) -> Iterator[Any]:
    """Playwright driving the Debian browser at ``executable`` (from ``package``), for a
    fixture to yield; skipped where it is not installed, failed when the browser tests are
    required (CLINICMAIL_TEST_REQUIRE_BROWSER=1)."""
    if not os.path.exists(executable):
        if REQUIRE:
            pytest.fail(
                f"CLINICMAIL_TEST_REQUIRE_BROWSER=1 but Debian's {package} is not installed"
            )
        pytest.skip(f"install Debian's {package} to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless chromium, one per test module."""
    yield from launch(HEADLESS_CHROMIUM, "chromium-headless-shell")


def _real_now() -> datetime:
    """The machine's clock, also inside a test that fixed its own (conftest)."""
    hatch = time_machine.escape_hatch
    return datetime.fromtimestamp(
        hatch.time.time() if hatch.is_travelling() else time.time(), tz=UTC
    )


@cache
def _site_clock() -> datetime:
    """The moment this process's sites' templates are made as of: the first site's, so that
    they all start from one copy of the schema (tests/support/initcache.py)."""
    return _real_now()


def _command(args: tuple[str, ...], stdin: str = "") -> Run:
    """The real ``clinicmail`` entry point run in this process, in its current environment and
    working directory, on the real clock, as the command would run beside the server: a test's
    fixed clock would make a signup the server stored look to the command as if it came from
    the future."""
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_stdin = sys.argv, sys.stdin
    sys.argv, sys.stdin = ["clinicmail", *args], io.StringIO(stdin)
    code = 0
    try:
        with (
            time_machine.travel(_real_now(), tick=True),
            redirect_stdout(out),
            redirect_stderr(err),
        ):
            main()
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        sys.argv, sys.stdin = saved_argv, saved_stdin
    return Run(code, out.getvalue(), err.getvalue())


class Site:
    """A clinicmail database in ``tmp_path``, seeded by the real CLI, served by a real
    ``clinicmail serve`` (:meth:`serving`). Tests that only read, or write rows no other test
    looks at, share one per module (a module-scoped fixture)."""

    _held: ClassVar[set[int]] = set()  # ports of this process's sites that may still serve

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        # The modules' sites take turns on one port, so a site's settings (its base URL among
        # them) are those of the site before it: :meth:`init` copies the database that site's
        # real init made, instead of migrating and checking the whole library again.
        self.port = free_port() if Site._held else steady_port()
        Site._held.add(self.port)
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = serve_env(tmp_path)
        self.env["CLINICMAIL_BASE_URL"] = self.base
        self.db_url = self.env["CLINICMAIL_DATABASE_URL"]

    def run(self, *args: str, stdin: str = "") -> Run:
        """The real ``clinicmail`` entry point run in this process, with the site's environment
        and working directory, as the command would run beside the server. In-process, because a
        fresh Python for every seeding command cost more than the command itself; the server the
        browser drives stays a real process (:meth:`serving`)."""
        with self._inside():
            return _command(args, stdin)

    @contextmanager
    def _inside(self) -> Iterator[None]:
        """The site's environment and working directory for the block, then this process's."""
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        os.environ.clear()
        os.environ.update(self.env)
        os.chdir(self.tmp_path)
        try:
            yield
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)

    def init(self, *, staff: bool = False) -> None:
        """``clinicmail init`` (and with ``staff`` one console account per role in STAFF, all
        with PASSWORD): a copy of the database a real run of the same commands made with the
        same settings earlier in this process (tests/support/initcache.py), or the real run
        where there is none to copy."""

        def run() -> Run:
            first = _command(("init",))
            if first.code == 0 and staff:
                for role, email in STAFF.items():
                    added = _command(("users", "add", email, "--role", role), PASSWORD + "\n")
                    assert added.code == 0, added.err
            return first

        with self._inside():
            made = init_from_template(
                self.db_url, self.tmp_path, run, _site_clock(), "staff" if staff else "init"
            )
            if made is None:
                made = run()
        assert made.code == 0, made.err

    def cli(self, *args: str, stdin: str = "") -> str:
        """What the command printed; it must succeed."""
        run = self.run(*args, stdin=stdin)
        assert run.code == 0, run.err
        return run.out

    @contextmanager
    def serving(self) -> Iterator[Site]:
        """`clinicmail serve --no-scheduler` on the site's port for the block, stopped by SIGTERM."""
        proc = spawn_web(self.env, self.tmp_path, self.port)
        try:
            wait_healthy(f"{self.base}/healthz", proc)
            yield self
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=20)
            Site._held.discard(self.port)

    def link_in_latest(self, kind: str, to: str | None = None) -> str:
        """The `kind` link (confirm, unsubscribe…) in the newest outbox message (to ``to``: a
        site shared by several tests holds other people's messages too)."""
        listed = json.loads(self.cli("outbox", "list", "--limit", "200", "--json"))
        newest = next(m["id"] for m in listed if to is None or m["to"].lower() == to.lower())
        body = self.cli("outbox", "show", str(newest))
        found = re.search(rf"{re.escape(self.base)}/{kind}/[A-Za-z0-9._~-]+", body)
        assert found, body
        return found.group(0)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        """What ``sql`` reads from the site's database, through a connection of its own (the
        server holds its own)."""
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql), params).all())
        finally:
            engine.dispose()

    def person(self, email: str) -> Any:
        """The person's row; a signup is stored just after its page is answered, so wait a
        moment for it to appear."""

        def stored() -> Any:
            found = self.rows(
                "SELECT status, timezone FROM subscribers WHERE email_key = :e", e=email
            )
            return found[0] if found else None

        return wait_until(stored, timeout=5, interval=0.1, message=f"{email} was never stored")


@contextmanager
def console_site(
    tmp_path: Path, rows: list[str], tick_at: str = "2026-12-07T10:00:00+00:00"
) -> Iterator[Site]:
    """A served site with one account per staff role, ``rows`` (CSV lines under
    tests.support.cli.CSV_HEADER) imported by the real bulk import, and one tick at ``tick_at``
    so there are emails to show: the seeded console the axe and phone tests share the shape of,
    made once per module by their fixtures."""
    from tests.support.cli import CSV_HEADER

    s = Site(tmp_path)
    s.init(staff=True)
    csv = tmp_path / "people.csv"
    csv.write_text(CSV_HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    s.cli("subscribers", "import", str(csv))
    s.cli("tick", "--now", tick_at)
    with s.serving():
        yield s


SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


# Screenshots are for a person to look at, not checked by anything, and a full-page PNG costs
# the browser a third of a second: the tests take them only when asked
# (CLINICMAIL_TEST_SCREENSHOTS=1 make test), as scripts/console_screenshots.py does on demand.
TAKE_SHOTS = os.environ.get("CLINICMAIL_TEST_SCREENSHOTS", "") not in ("", "0")


def shot(page: Any, name: str) -> None:
    """A full-page screenshot under artifacts/screenshots/, when CLINICMAIL_TEST_SCREENSHOTS
    is set, for a person to look at."""
    if not TAKE_SHOTS:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_draft(page: Any, site: Site, campaign_id: str) -> None:
    """The campaign's page, with a draft started if it had none (its files open for editing)."""
    page.goto(f"{site.base}/admin/campaigns/{campaign_id}")
    if page.locator("#start-draft").count():
        page.locator("#start-draft").click()
        page.wait_for_url(re.compile(r"note=draft"))


def sign_in(
    chromium: Any,
    site: Site,
    role: str,
    width: int = 1280,
    *,
    start: str = "/admin/campaigns",
    **context_options: Any,
) -> tuple[Any, Any]:
    """A new browser context signed in as ``role``, on the console page ``start`` (sent to the
    sign-in form first, and back to ``start`` after it)."""
    context = chromium.new_context(viewport={"width": width, "height": 900}, **context_options)
    page = context.new_page()
    page.goto(f"{site.base}{start}")  # not signed in: sent to the sign-in form
    assert "/admin/login" in page.url
    page.fill("#email", STAFF[role])
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(start) + "$"))
    return context, page


def unlabelled(page: Any) -> int:
    """How many visible form controls on the page have no label a screen reader can announce."""
    return int(
        page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
            ".filter(e => !e.labels || e.labels.length === 0).length"
        )
    )
