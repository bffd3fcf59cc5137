"""Shared helpers for the console tests: a configured app with staff accounts, and sign-in."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.cli import CLI
from tests.support.run import Run

PASSWORD = "correct horse battery staple"
STAFF = {
    "marketing": "mara@clinic.example",
    "clinician": "cleo@clinic.example",
    "ops": "otto@clinic.example",
}


def users_cmd(cli: CLI, *args: str, stdin: str = f"{PASSWORD}\n") -> Run:
    """Run ``clinicmail users …`` with ``stdin`` piped (not a terminal)."""
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return cli("users", *args)
    finally:
        sys.stdin = old


@dataclass
class Console:
    cli: CLI
    app: Any
    ctx: Any

    def client(self, *, base_url: str = "http://testserver") -> TestClient:
        return TestClient(self.app, base_url=base_url, follow_redirects=False)

    def csrf_of_login(self, client: TestClient) -> str:
        page = client.get("/admin/login")
        assert page.status_code == 200
        return csrf_in(page.text)

    def sign_in(
        self, client: TestClient, role: str = "marketing", *, password: str = PASSWORD
    ) -> Any:
        token = self.csrf_of_login(client)
        return client.post(
            "/admin/login",
            data={"email": STAFF[role], "password": password, "csrf_token": token},
        )

    def signed_in(self, role: str = "marketing") -> tuple[TestClient, str]:
        """A client signed in as ``role`` and its session's CSRF token."""
        client = self.client()
        response = self.sign_in(client, role)
        assert response.status_code == 303, response.text
        home = client.get("/admin")
        assert home.status_code == 200
        return client, csrf_in(home.text)


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def make_console(cli: CLI, base_url: str = "http://testserver") -> Console:
    from app.context import AppContext
    from app.http import create_app
    from app.settings import load_settings

    cli.env("CLINICMAIL_BASE_URL", base_url)

    def add_staff() -> None:
        for role, email in STAFF.items():
            run = users_cmd(cli, "add", email, "--role", role)
            assert run.code == 0, run.err

    # Three argon2id hashes are a second of CPU: a template made once holds the accounts.
    assert cli.init_then("staff", add_staff).code == 0
    ctx = AppContext.from_settings(load_settings())
    return Console(cli=cli, app=create_app(ctx), ctx=ctx)


@pytest.fixture(name="console")
def console_fixture(cli: CLI) -> Iterator[Console]:
    """The app with one account per role (the `console` fixture)."""
    made = make_console(cli)
    try:
        yield made
    finally:
        made.ctx.close()
