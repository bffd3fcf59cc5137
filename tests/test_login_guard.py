"""Sign-in under attack: the lockout counted atomically, hashing bounded and outside
transactions, rate limits, lifting a lockout, and account actions that fail at once."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from staff import accounts, passwords
from staff.tables import audit_log, login_attempts
from storage import utcnow
from tests.support.backends import sqlite_only
from tests.support.cli import CLI
from tests.support.console import PASSWORD, STAFF, Console, users_cmd

WRONG = "not the right password at all"
F = TypeVar("F", bound=Callable[..., Any])


def staff(*roles: str) -> Callable[[F], F]:
    """The staff accounts (by role) a test's console starts with."""

    def mark(test: F) -> F:
        setattr(test, "staff_roles", roles)  # noqa: B010 (F has no such attribute for mypy)
        return test

    return mark


@pytest.fixture(name="console")
def console_fixture(cli: CLI, request: pytest.FixtureRequest) -> Iterator[Console]:
    """The console with only the staff accounts a test signs in as (``@staff(...)``
    names the roles; none by default): each account added costs an Argon2 hash, and these
    tests spend their time hashing already."""
    from app.context import AppContext
    from app.http import create_app
    from app.settings import load_settings

    cli.env("CLINICMAIL_BASE_URL", "http://testserver")
    assert cli("init").code == 0
    for role in getattr(request.function, "staff_roles", ()):
        run = users_cmd(cli, "add", STAFF[role], "--role", role)
        assert run.code == 0, run.err
    ctx = AppContext.from_settings(load_settings())
    try:
        yield Console(cli=cli, app=create_app(ctx), ctx=ctx)
    finally:
        ctx.close()


def _outcomes(console: Console, email: str) -> dict[str, int]:
    key = email.lower()
    with console.ctx.db.begin() as conn:
        rows = conn.execute(
            select(login_attempts.c.outcome, func.count())
            .where(login_attempts.c.email_key == key)
            .group_by(login_attempts.c.outcome)
        ).all()
    return {outcome: n for outcome, n in rows}


def _lock(console: Console, role: str) -> None:
    """Five failures through the domain (the HTTP rate limit is tested on its own)."""
    for _ in range(accounts.MAX_FAILURES):
        result = accounts.sign_in(console.ctx.db, STAFF[role], WRONG, utcnow())
        assert result.user is None
    locked = accounts.sign_in(console.ctx.db, STAFF[role], PASSWORD, utcnow())
    assert locked.user is None and locked.locked_until is not None


@staff("clinician")
def test_twenty_concurrent_attempts_check_at_most_five(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """19 wrong passwords and the right one at once: at most 5 are checked, and the right one
    signs in only if it was one of them (then at most 4 failures came before the lock).

    A success starts the count afresh (a signed-in owner is not locked out by an earlier typo),
    so a thread the loaded machine starts late, after the success, may be checked: the limit
    holds per stretch, before and after the success, which the recorded checks show."""
    email = STAFF["clinician"]
    gate = threading.Barrier(20)
    results: list[object] = [None] * 20
    checks: list[tuple[float, float, bool]] = []  # (started, ended, ok) of each password check
    real_verify = passwords.verify

    def recorded_verify(digest: str, password: str) -> bool:
        started = time.monotonic()
        ok = real_verify(digest, password)
        checks.append((started, time.monotonic(), ok))
        return ok

    monkeypatch.setattr(accounts, "verify", recorded_verify)

    def attempt(i: int, password: str) -> None:
        gate.wait()
        try:
            results[i] = accounts.sign_in(console.ctx.db, email, password, utcnow())
        except passwords.PasswordsBusy as exc:
            results[i] = exc

    threads = [
        threading.Thread(target=attempt, args=(i, PASSWORD if i == 19 else WRONG))
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    seen = _outcomes(console, email)
    checked = seen.get("success", 0) + seen.get("failure", 0)
    assert checked == len(checks) >= 1, (seen, checks)
    ended_ok = [end for _, end, ok in checks if ok]
    reset = ended_ok[0] if ended_ok else float("inf")
    before = [c for c in checks if c[0] < reset]
    after_reset = [c for c in checks if c[0] >= reset]
    assert len(before) <= accounts.MAX_FAILURES, (seen, checks)
    assert len(after_reset) <= accounts.MAX_FAILURES, (seen, checks)
    assert seen.get("check", 0) == 0, seen
    right = results[19]
    signed_in = isinstance(right, accounts.SignIn) and right.user is not None
    assert signed_in == (seen.get("success", 0) == 1), (right, seen)
    if not signed_in and seen.get("failure", 0) == accounts.MAX_FAILURES:
        # Locked: the right password is refused afterwards too.
        after = accounts.sign_in(console.ctx.db, email, PASSWORD, utcnow())
        assert after.user is None and after.locked_until is not None
    wrong_signed_in = [r for r in results[:19] if isinstance(r, accounts.SignIn) and r.user]
    assert wrong_signed_in == []


@staff("ops")
def test_twenty_concurrent_wrong_attempts_lock_the_account(console: Console) -> None:
    email = STAFF["ops"]
    gate = threading.Barrier(20)

    def attempt() -> None:
        gate.wait()
        try:
            accounts.sign_in(console.ctx.db, email, WRONG, utcnow())
        except passwords.PasswordsBusy:
            pass

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    seen = _outcomes(console, email)
    assert seen.get("failure", 0) <= accounts.MAX_FAILURES, seen
    # However the 20 were split between checks and refusals, the limit is never exceeded and
    # five more failures at most lock the account for the right password too.
    for _ in range(accounts.MAX_FAILURES):
        accounts.sign_in(console.ctx.db, email, WRONG, utcnow())
    after = accounts.sign_in(console.ctx.db, email, PASSWORD, utcnow())
    assert after.user is None and after.locked_until is not None
    assert _outcomes(console, email).get("failure", 0) <= accounts.MAX_FAILURES


@staff("marketing")
@sqlite_only("the hashing slots are in the process and refuse before any count")
def test_busy_hashing_slots_answer_429_and_do_not_count(console: Console) -> None:
    client = console.client()
    token = console.csrf_of_login(client)
    with ExitStack() as held:
        for _ in range(passwords.HASH_SLOTS):
            held.enter_context(passwords._slot())
        started = time.monotonic()
        response = client.post(
            "/admin/login",
            data={"email": STAFF["marketing"], "password": PASSWORD, "csrf_token": token},
        )
        waited = time.monotonic() - started
    assert response.status_code == 429
    assert response.headers["retry-after"].isdigit()
    assert waited < passwords.SLOT_WAIT + 5
    seen = _outcomes(console, STAFF["marketing"])
    assert seen.get("failure", 0) == 0 and seen.get("check", 0) == 0, seen
    # With the slots free again the same person signs in.
    assert console.sign_in(console.client(), "marketing").status_code == 303


def test_sign_in_rate_limit_per_account_and_per_client(console: Console) -> None:
    client = console.client()

    def post(email: str) -> Any:
        token = console.csrf_of_login(client)  # each answer sets a new form token
        return client.post(
            "/admin/login", data={"email": email, "password": WRONG, "csrf_token": token}
        )

    statuses = [post("target@clinic.example").status_code for _ in range(10)]
    # Four failures, the fifth locks (429), then the lockout refuses without a hash...
    assert statuses == [401] * 4 + [429] * 6
    # ...and the eleventh within the minute is over the per-account limit.
    limited = post("target@clinic.example")
    assert limited.status_code == 429
    assert "Too many sign-in attempts" in limited.text
    # The per-client limit: different addresses from one client, 30 a minute.
    codes = [post(f"visitor{i}@clinic.example").status_code for i in range(19)]
    assert codes == [401] * 19
    refused = post("visitor-last@clinic.example")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1


@staff("clinician", "ops")
def test_unlock_from_the_cli_the_console_and_a_reset(console: Console) -> None:
    cli = console.cli
    _lock(console, "clinician")
    assert console.sign_in(console.client(), "clinician").status_code == 429

    run = users_cmd(cli, "unlock", STAFF["clinician"], stdin="")
    assert run.code == 0 and "unlocked" in run.out, run
    assert console.sign_in(console.client(), "clinician").status_code == 303

    # The ops page shows the lock and its button lifts it.
    _lock(console, "clinician")
    ops, csrf = console.signed_in("ops")
    page = ops.get("/admin/ops").text
    assert "locked until" in page

    found = re.search(r'action="/admin/ops/accounts/(\d+)/unlock"', page)
    assert found, page
    done = ops.post(f"/admin/ops/accounts/{found.group(1)}/unlock", data={"csrf_token": csrf})
    assert done.status_code == 303
    assert "locked until" not in ops.get("/admin/ops").text
    assert console.sign_in(console.client(), "clinician").status_code == 303

    # A password reset lifts it too.
    _lock(console, "clinician")
    new = "a brand new passphrase for cleo"
    assert users_cmd(cli, "reset-password", STAFF["clinician"], stdin=new + "\n").code == 0
    assert console.sign_in(console.client(), "clinician", password=new).status_code == 303

    with console.ctx.db.begin() as conn:
        unlocks = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.action == "staff.unlock")
        ).scalars()
        assert sorted(unlocks) == ["cli", STAFF["ops"]]

    ghost = users_cmd(cli, "unlock", "ghost@clinic.example", stdin="")
    assert ghost.code == 1 and ghost.err.count("\n") == 1 and "no account" in ghost.err


@staff("ops")
@pytest.mark.parametrize("action", ["disable-missing", "disable-own", "reset-missing"])
def test_refused_account_actions_answer_at_once(console: Console, action: str) -> None:
    ops, csrf = console.signed_in("ops")
    own = re.search(
        r'data-email="otto@clinic\.example">.*?/admin/ops/accounts/(\d+)/reset',
        ops.get("/admin/ops").text,
        re.S,
    )
    assert own
    target = {"disable-missing": "99999/disable", "disable-own": f"{own.group(1)}/disable"}.get(
        action, "99999/reset"
    )
    started = time.monotonic()
    response = ops.post(
        f"/admin/ops/accounts/{target}",
        data={"csrf_token": csrf, "password": "a brand new passphrase for nobody"},
    )
    assert time.monotonic() - started < 5  # no lock waited for (SQLite's timeout is 30 s)
    assert response.status_code == (409 if action == "disable-own" else 404)
    assert ("own account" if action == "disable-own" else "no such account") in response.text
    # Nothing is held: another write goes through at once.
    started = time.monotonic()
    added = users_cmd(console.cli, "add", "new@clinic.example", "--role", "marketing")
    assert added.code == 0 and time.monotonic() - started < 5


def test_cli_account_actions_on_a_missing_account(console: Console) -> None:
    for args in (("disable",), ("reset-password",), ("unlock",)):
        run = users_cmd(console.cli, *args, "ghost@clinic.example")
        assert run.code == 1, run
        assert run.err.count("\n") == 1 and "no account for ghost@clinic.example" in run.err


WEAK = ["password", "12345678", "passwordpassword", "qwertyuiopasdf", "new@clinic.example"]


@staff("ops")
@sqlite_only("a password is judged before anything is stored")
def test_weak_staff_passwords_are_refused(console: Console) -> None:
    ops, csrf = console.signed_in("ops")
    for weak in WEAK:
        run = users_cmd(
            console.cli, "add", "new@clinic.example", "--role", "ops", stdin=weak + "\n"
        )
        assert run.code == 1 and run.err.count("\n") == 1, (weak, run)
        assert "at least 12" in run.err or "too easy to guess" in run.err
        page = ops.post(
            "/admin/ops/accounts",
            data={
                "csrf_token": csrf,
                "email": "new@clinic.example",
                "role": "ops",
                "password": weak,
            },
        )
        assert page.status_code == 422, weak
        assert "Not added" in page.text
    assert "new@clinic.example" not in console.cli("users", "list").out
