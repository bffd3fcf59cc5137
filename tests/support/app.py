"""Helpers for the subscribers tests: the real app on the `cli` fixture's database, and reading
what the outbox transport stored. (No tests here.)"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message

from sqlalchemy import select

from app.context import AppContext
from app.http import create_app
from app.settings import load_settings
from campaigns.ledger import sends
from subscribers.tables import subscribers
from tests.support.cli import CLI
from tests.support.outbox import text_part

with warnings.catch_warnings():
    # Starlette asks for its `httpx2` fork; the `httpx` we have works the same for tests.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BASE = "https://mail.clinic.example"

# A signup for the API (``POST /api/subscribers``).
ANN = {
    "email": "ann@example.com",
    "first_name": "Ann",
    "symptoms": ["lower_back"],
    "timezone": "Europe/London",
    "consent": True,
}


@contextmanager
def context_for(cli: CLI) -> Iterator[AppContext]:
    """The parts the app is built from (database, catalog, settings), on the `cli` fixture's
    database and settings, without the HTTP app: for a test that only reads or writes rows."""
    if not cli.initialised:
        assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    try:
        yield ctx
    finally:
        ctx.close()


@contextmanager
def app_for(cli: CLI) -> Iterator[tuple[TestClient, AppContext]]:
    """The real HTTP app on the same database and settings the `cli` fixture uses (created by
    ``init`` first if no command has run yet)."""
    with context_for(cli) as ctx, TestClient(create_app(ctx), base_url=BASE) as client:
        yield client, ctx


def link_in(msg: Message, purpose: str) -> str:
    """The path of the first `{BASE}/{purpose}/{token}` link in the message's text part."""
    found = re.search(rf"{re.escape(BASE)}(/{purpose}/[A-Za-z0-9._-]+)", text_part(msg))
    assert found, text_part(msg)
    return found.group(1)


def person(ctx: AppContext, email: str) -> dict[str, object] | None:
    with ctx.db.begin() as conn:
        row = (
            conn.execute(select(subscribers).where(subscribers.c.email_key == email.lower()))
            .mappings()
            .first()
        )
        return dict(row) if row else None


def ledger(ctx: AppContext) -> list[tuple[str, str, str]]:
    """(campaign, step, status) of every send, oldest first."""
    with ctx.db.begin() as conn:
        return [
            (r.campaign_id, r.step_id, r.status)
            for r in conn.execute(
                select(sends.c.campaign_id, sends.c.step_id, sends.c.status).order_by(sends.c.id)
            )
        ]


@contextmanager
def web(cli: CLI) -> Iterator[TestClient]:
    ctx = AppContext.from_settings(load_settings())
    try:
        with TestClient(create_app(ctx)) as client:
            yield client
    finally:
        ctx.close()
