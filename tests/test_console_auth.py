"""The console's front door (the README's "Staff console"): the login form, cookie flags, lockout,
sessions with timeouts and rotation, CSRF on every write, nothing under /admin without a
session, and the API docs for signed-in staff only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from staff.tables import audit_log, staff_sessions
from storage import Database
from tests.support.backends import sqlite_only
from tests.support.cli import CLI
from tests.support.console import PASSWORD, STAFF, Console, csrf_in, make_console


def _routes(routes: list[Any]) -> Iterator[Any]:
    """Every route, also inside included routers (newer FastAPI keeps them wrapped)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def _admin_paths(console: Console) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /admin except the login form, with path
    parameters filled in, plus paths nobody declared: so routes added later are covered too."""
    found: list[tuple[str, str]] = []
    for route in _routes(console.app.routes):
        path = getattr(route, "path", "")
        if not path.startswith("/admin") or path == "/admin/login":
            continue
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method in ("HEAD", "OPTIONS"):
                continue
            found.append((method, concrete))
    found += [("GET", "/admin/nothing/here"), ("DELETE", "/admin/campaigns/x"), ("GET", "/admin/")]
    return found


@sqlite_only("a page's fields")
def test_login_form_has_the_contract_fields(console: Console) -> None:
    page = console.client().get("/admin/login")
    assert page.status_code == 200
    assert re.search(r'<input[^>]+name="email"', page.text)
    assert re.search(r'<input[^>]+name="password"[^>]*type="password"', page.text)
    assert re.search(r'<input type="hidden" name="csrf_token" value="[^"]{20,}"', page.text)
    assert '<label for="email">' in page.text and '<label for="password">' in page.text


def test_sign_in_answers_303_with_a_safe_session_cookie(console: Console) -> None:
    client = console.client()
    response = console.sign_in(client, "marketing")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("clinicmail_session=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "secure" not in flags  # the base URL is plain http here
    home = client.get("/admin")
    assert home.status_code == 200
    assert STAFF["marketing"] in home.text


@sqlite_only("cookie flags follow a setting")
def test_cookie_is_secure_when_the_base_url_is_https(cli: CLI) -> None:
    console = make_console(cli, base_url="https://mail.clinic.example")
    try:
        client = console.client(base_url="https://testserver")
        response = console.sign_in(client, "ops")
        assert response.status_code == 303
        cookie = next(
            c
            for c in response.headers.get_list("set-cookie")
            if c.startswith("clinicmail_session=")
        )
        assert "secure" in {p.strip().lower() for p in cookie.split(";")}
        assert client.get("/admin").status_code == 200
    finally:
        console.ctx.close()


def _session_count(console: Console) -> int:
    with console.ctx.db.begin() as conn:
        return len(conn.execute(select(staff_sessions.c.token_hash)).all())


@pytest.mark.parametrize(
    ("email", "password"),
    [
        (STAFF["marketing"], "wrong password entirely"),
        ("nobody@clinic.example", PASSWORD),
        ("not an address", PASSWORD),
        (STAFF["marketing"], ""),
    ],
)
@sqlite_only("credentials are judged by the hash; counting failures is the lockout tests', on both")
def test_wrong_credentials_never_sign_in(console: Console, email: str, password: str) -> None:
    client = console.client()
    token = console.csrf_of_login(client)
    response = client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 401
    assert "clinicmail_session" not in response.headers.get("set-cookie", "")
    assert "do not match" in response.text
    assert _session_count(console) == 0
    assert client.get("/admin").status_code == 303


@sqlite_only("the CSRF token is checked before anything is read or stored")
def test_login_without_its_csrf_token_is_refused(console: Console) -> None:
    client = console.client()
    client.get("/admin/login")  # the cookie half of the pair, but not the form half
    response = client.post(
        "/admin/login", data={"email": STAFF["ops"], "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert _session_count(console) == 0


def test_five_failures_lock_the_account_for_fifteen_minutes(console: Console) -> None:
    client = console.client()
    for _ in range(5):
        assert console.sign_in(client, "clinician", password="not the password!").status_code in (
            401,
            429,
        )
    locked = console.sign_in(client, "clinician")  # the right password, still refused
    assert locked.status_code == 429
    assert "locked" in locked.text
    assert _session_count(console) == 0
    # Another account is not affected.
    assert console.sign_in(console.client(), "marketing").status_code == 303
    with time_machine.travel(timedelta(minutes=14), tick=True):
        assert console.sign_in(console.client(), "clinician").status_code == 429
    with time_machine.travel(timedelta(minutes=16), tick=True):
        assert console.sign_in(console.client(), "clinician").status_code == 303


def test_failures_spread_beyond_fifteen_minutes_do_not_lock(console: Console) -> None:
    for _ in range(4):
        assert (
            console.sign_in(console.client(), "ops", password="bad password 123").status_code == 401
        )
    with time_machine.travel(timedelta(minutes=16), tick=True):
        assert (
            console.sign_in(console.client(), "ops", password="bad password 123").status_code == 401
        )
        assert console.sign_in(console.client(), "ops").status_code == 303


@sqlite_only("without a session cookie nothing is looked up")
def test_no_admin_path_answers_without_a_session(console: Console) -> None:
    client = console.client()
    client.cookies.set("clinicmail_session", "made-up-token")
    paths = _admin_paths(console)
    assert len(paths) >= 6
    for method, path in paths:
        page = client.request(method, path)
        if path.startswith("/admin/api/"):  # the JSON API never redirects
            assert page.status_code == 401, (method, path, page.status_code)
        else:
            assert page.status_code == 303, (method, path, page.status_code)
            assert page.headers["location"].startswith("/admin/login")
        assert "Subscriber" not in page.text and "console.css" not in page.text
        api = client.request(method, path, headers={"Accept": "application/json"})
        assert api.status_code == 401, (method, path)
        assert api.json() == {"detail": "sign in required"}


@sqlite_only("a role check on a page")
def test_api_docs_are_for_signed_in_staff_only(console: Console) -> None:
    anonymous = console.client()
    for path in ("/docs", "/redoc"):
        assert anonymous.get(path).status_code == 303
    assert anonymous.get("/openapi.json").status_code == 401
    client, _ = console.signed_in("marketing")
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/api/subscribers" in spec.json()["paths"]


@sqlite_only("the CSRF token is checked before any write")
def test_every_write_without_the_csrf_token_is_refused_and_changes_nothing(
    console: Console,
) -> None:
    client, token = console.signed_in("ops")
    before = _session_count(console)
    writes = [(m, p) for m, p in _admin_paths(console) if m in ("POST", "PUT", "PATCH", "DELETE")]
    assert ("POST", "/admin/logout") in writes
    for method, path in writes:
        for headers in ({}, {"X-CSRF-Token": "wrong"}):
            response = client.request(method, path, headers=headers, data={"csrf_token": "nope"})
            assert response.status_code == 403, (method, path)
    # Logout was refused: the session still works and nothing was written.
    assert _session_count(console) == before
    assert client.get("/admin").status_code == 200
    # The right token in the header (htmx) or the form field is accepted.
    assert client.post("/admin/logout", headers={"X-CSRF-Token": token}).status_code == 303
    assert client.get("/admin").status_code == 303
    client2, token2 = console.signed_in("ops")
    assert client2.post("/admin/logout", data={"csrf_token": token2}).status_code == 303
    assert _session_count(console) == before - 1


def test_session_id_is_rotated_at_sign_in(console: Console) -> None:
    client, _ = console.signed_in("marketing")
    first = client.cookies.get("clinicmail_session")
    response = console.sign_in(client, "marketing")
    assert response.status_code == 303
    second = client.cookies.get("clinicmail_session")
    assert first and second and first != second
    old = console.client()
    old.cookies.set("clinicmail_session", first)
    assert old.get("/admin").status_code == 303  # the pre-login session ended
    assert _session_count(console) == 1


def test_idle_and_absolute_timeouts(console: Console) -> None:
    client, _ = console.signed_in("marketing")
    with time_machine.travel(timedelta(minutes=31), tick=True):
        assert client.get("/admin").status_code == 303
    client, _ = console.signed_in("marketing")
    for minutes in range(20, 12 * 60, 20):  # active all day, never idle for long
        with time_machine.travel(timedelta(minutes=minutes), tick=True):
            assert client.get("/admin").status_code == 200, minutes
    with time_machine.travel(timedelta(hours=12, minutes=5), tick=True):
        assert client.get("/admin").status_code == 303


@sqlite_only("the return path is judged as a URL")
def test_sign_in_returns_to_the_page_asked_for(console: Console) -> None:
    client = console.client()
    bounce = client.get("/admin/subscribers/abc123")
    assert bounce.headers["location"] == "/admin/login?next=/admin/subscribers/abc123"
    form = client.get(bounce.headers["location"])
    token = csrf_in(form.text)
    assert 'name="next" value="/admin/subscribers/abc123"' in form.text
    done = client.post(
        "/admin/login",
        data={
            "email": STAFF["ops"],
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/admin/subscribers/abc123",
        },
    )
    assert done.headers["location"] == "/admin/subscribers/abc123"
    evil = console.client()
    token = console.csrf_of_login(evil)
    done = evil.post(
        "/admin/login",
        data={
            "email": STAFF["ops"],
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert done.headers["location"] == "/admin"


def test_audit_log_is_append_only(console: Console, db_url: str) -> None:
    console.signed_in("marketing")
    db = Database(db_url)
    try:
        with db.begin() as conn:
            actions = conn.execute(select(audit_log.c.action)).scalars().all()
        assert "staff.add" in actions and "staff.sign_in" in actions
        for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"), db.begin() as conn:
                conn.execute(text(statement))
        with db.begin() as conn:
            assert conn.execute(select(audit_log.c.actor)).scalars().all().count("cli") == 3
    finally:
        db.dispose()


def test_housekeeping_purges_expired_sessions(console: Console) -> None:
    from app.service import housekeeping_job

    console.signed_in("marketing")
    housekeeping_job(console.ctx)
    assert _session_count(console) == 1
    with time_machine.travel(timedelta(hours=1), tick=True):
        housekeeping_job(console.ctx)
    assert _session_count(console) == 0
