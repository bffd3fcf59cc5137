"""Debian's chromium driven by Playwright against a real `clinicmail serve`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support.console import PASSWORD, STAFF
from tests.support.serve import EXE, free_port, serve_env, spawn_web, wait_healthy
from tests.support.wait import wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE = os.environ.get("CLINICMAIL_TEST_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if REQUIRE:
            pytest.fail("CLINICMAIL_TEST_REQUIRE_BROWSER=1 but Debian's chromium is not installed")
        pytest.skip("install Debian's chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class Site:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = serve_env(tmp_path)
        self.env["CLINICMAIL_BASE_URL"] = self.base
        self.db_url = self.env["CLINICMAIL_DATABASE_URL"]

    def cli(self, *args: str) -> str:
        run = subprocess.run(
            [EXE, *args],
            env=self.env,
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout

    def add_staff(self) -> None:
        """One console account per role in STAFF, all with PASSWORD."""
        for role, email in STAFF.items():
            run = subprocess.run(
                [EXE, "users", "add", email, "--role", role],
                env=self.env,
                cwd=self.tmp_path,
                input=PASSWORD + "\n",
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert run.returncode == 0, run.stderr

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

    def link_in_latest(self, kind: str) -> str:
        """The `kind` link (confirm, unsubscribe…) in the newest outbox message."""
        newest = self.cli("outbox", "list", "--limit", "1").split("\t")[0]
        body = self.cli("outbox", "show", newest)
        found = re.search(rf"{re.escape(self.base)}/{kind}/[A-Za-z0-9._~-]+", body)
        assert found, body
        return found.group(0)

    def person(self, email: str) -> Any:
        """The person's row; a signup is stored just after its page is answered, so wait a
        moment for it to appear."""
        engine = create_engine(self.db_url)

        def stored() -> Any:
            with engine.connect() as conn:
                return conn.execute(
                    text("SELECT status, timezone FROM subscribers WHERE email_key = :e"),
                    {"e": email},
                ).first()

        try:
            return wait_until(stored, timeout=5, interval=0.1, message=f"{email} was never stored")
        finally:
            engine.dispose()


SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def shot(page: Any, name: str) -> None:
    """A full-page screenshot under artifacts/screenshots/ (git-ignored), for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


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
