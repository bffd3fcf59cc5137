"""The signup endpoint must not tell a stranger whether an address is held: it answers alike
whatever the state of the address (new, unconfirmed, confirmed, unsubscribed, suppressed), and
only once the signup is stored (202 means stored). Its timing is probed in
tests/test_signup_timing.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, func, select

from app.context import AppContext
from app.http import create_app
from app.settings import load_settings
from campaigns.ledger import sends
from storage import utcnow
from subscribers import store
from subscribers.tables import signup_requests, subscribers
from tests.support.cli import CLI, write_csv
from tests.support.serve import real_server

STATES = ("new", "unconfirmed", "confirmed", "unsubscribed", "suppressed")


def _signup(email: str) -> dict[str, Any]:
    return {
        "email": email,
        "first_name": "Sam",
        "symptoms": ["neck"],
        "timezone": "Europe/London",
        "consent": True,
    }


def _sends(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(sends)).scalar_one())


@pytest.fixture
def ctx(cli: CLI, tmp_path: Path) -> Iterator[AppContext]:
    write_csv(
        tmp_path / "p.csv",
        [f"{s}@example.com,Kim,lower_back,Europe/London,yes,," for s in STATES[2:]],
    )
    assert cli("init").code == 0
    assert cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    context = AppContext.from_settings(load_settings())
    with context.db.begin() as conn:
        unsub = store.by_email_key(conn, "unsubscribed@example.com")
        assert unsub is not None and store.unsubscribe(conn, unsub, utcnow(), "test")
        store.suppress(conn, "suppressed@example.com", "bounce", utcnow())
    try:
        yield context
    finally:
        context.close()


def test_the_answer_is_the_same_and_comes_once_stored(ctx: AppContext) -> None:
    with real_server(create_app(ctx)) as base, httpx.Client(base_url=base) as client:
        assert client.post("/api/subscribers", json=_signup("unconfirmed@example.com")).is_success
        assert _status(ctx, "unconfirmed@example.com") == "unconfirmed"
        answers = {}
        for state in STATES:
            with ctx.db.begin() as conn:
                queued = _sends(conn)
            r = client.post("/api/subscribers", json=_signup(f"{state}@example.com"))
            with ctx.db.begin() as conn:  # the work is done by the time the answer comes
                # (the same signup again for "unconfirmed": its email is already queued)
                assert _sends(conn) == queued + (state not in ("unconfirmed", "suppressed"))
            headers = {k: v for k, v in r.headers.items() if k.lower() != "date"}
            answers[state] = (r.status_code, r.content, headers)
        assert all(a == answers["new"] for a in answers.values()), answers
        assert answers["new"][0] == 202

        # A new subscriber, held requests for the others (each with its confirmation email),
        # nothing at all for the suppressed address.
        assert _status(ctx, "new@example.com") == "unconfirmed"
        assert _held(ctx) == 2  # confirmed, unsubscribed
        assert _status(ctx, "confirmed@example.com") == "confirmed"
        assert _status(ctx, "unsubscribed@example.com") == "unsubscribed"
        assert _status(ctx, "suppressed@example.com") == "confirmed"  # untouched


def test_eight_concurrent_signups_of_one_new_address(
    ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    async def post_all(base: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            body = _signup("twin@example.com")
            return await asyncio.gather(
                *(client.post("/api/subscribers", json=body) for _ in range(8))
            )

    with real_server(create_app(ctx)) as base:
        replies = asyncio.run(post_all(base))
        assert {(r.status_code, r.content) for r in replies} == {(202, replies[0].content)}
    with ctx.db.begin() as conn:
        twins = conn.execute(
            select(func.count()).where(subscribers.c.email_key == "twin@example.com")
        ).scalar_one()
        confirms = conn.execute(
            select(func.count()).where(sends.c.step_id.like("confirm%"))
        ).scalar_one()
    assert twins == 1 and confirms == 1 and _held(ctx) == 0
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def _status(ctx: AppContext, email: str) -> str | None:
    with ctx.db.begin() as conn:
        found = conn.execute(
            select(subscribers.c.status).where(subscribers.c.email_key == email)
        ).scalar_one_or_none()
        return None if found is None else str(found)


def _held(ctx: AppContext) -> int:
    with ctx.db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(signup_requests)).scalar_one())
