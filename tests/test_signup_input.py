"""Input at the edge of the signup: a first name stays a name (bounded, no control characters,
no links or markup), a NUL anywhere is a 422 naming the field (PostgreSQL cannot store one), and
every message reads like English for a patient."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from subscribers.tables import subscribers
from tests.support.app import app_for, ledger
from tests.support.backends import sqlite_only
from tests.support.cli import CLI
from tests.support.outbox import messages, text_part
from tests.support.times import future_noon, iso

ANN: dict[str, Any] = {
    "email": "ann@example.com",
    "first_name": "Ann",
    "symptoms": ["lower_back"],
    "timezone": "Europe/London",
    "consent": True,
}


def _bad(reply: Any) -> dict[str, str]:
    assert reply.status_code == 422, reply.text
    return {d["loc"][-1]: d["msg"] for d in reply.json()["detail"]}


@pytest.mark.parametrize(
    "name",
    [
        "Click https://evil.example/win",
        "evil.example",
        "www.evil.example",
        "<b>Ann</b>",
        "Ann <script>",
        "ann@evil.example",
        "A" * 51,
        "Call 0800 123 456",
        "Visit evil dot com now",
        "see www evil",
        "An\u0007n",  # a control character is refused, not quietly dropped
        "Ann\r\nBcc: all",
        "Ann\u2028Lee",
    ],
)
@sqlite_only("refused before anything is stored")
def test_first_names_that_are_not_names_are_refused(cli: CLI, name: str) -> None:
    with app_for(cli) as (client, ctx):
        bad = _bad(client.post("/api/subscribers", json={**ANN, "first_name": name}))
        assert set(bad) == {"first_name"} and "first name" in bad["first_name"]
        with ctx.db.begin() as conn:
            assert conn.execute(select(func.count()).select_from(subscribers)).scalar_one() == 0


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("An\u200bn\u200b", "Ann"),  # zero-width spaces: stripped
        ("  Mary-Jane   O'Neil ", "Mary-Jane O'Neil"),
        ("Jos\u00e9", "Jos\u00e9"),
        ("J.R.", "J.R."),
        ("\u674e\u534e", "\u674e\u534e"),
        ("\u202eAnn", "Ann"),  # a right-to-left override: stripped
    ],
)
def test_real_names_are_kept_cleaned(cli: CLI, given: str, stored: str) -> None:
    with app_for(cli) as (client, ctx):
        assert client.post("/api/subscribers", json={**ANN, "first_name": given}).status_code == 202
        with ctx.db.begin() as conn:
            assert conn.execute(select(subscribers.c.first_name)).scalar_one() == stored
        assert cli("tick", "--now", iso(future_noon()), "--json").json()["sent"] == 1
        assert f"Hi {stored}," in text_part(messages(ctx)[0])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "ann\u0000@example.com"),
        ("first_name", "A\u0000nn"),
        ("timezone", "Europe/London\u0000"),
        ("symptoms", ["lower_back", "neck\u0000"]),
    ],
)
def test_a_nul_anywhere_is_a_422_naming_the_field(cli: CLI, field: str, value: Any) -> None:
    with app_for(cli) as (client, ctx):
        bad = _bad(client.post("/api/subscribers", json={**ANN, field: value}))
        assert set(bad) == {field} and "NUL" in bad[field]
        form = {"email": "ann@example.com", "consent": "yes", field: value}
        page = client.post("/signup", data=form)
        assert page.status_code == 422 and "NUL" in page.text
        with ctx.db.begin() as conn:
            assert conn.execute(select(func.count()).select_from(subscribers)).scalar_one() == 0
        assert ledger(ctx) == []


@sqlite_only("the words of a 422")
def test_messages_read_like_english(cli: CLI) -> None:
    with app_for(cli) as (client, _ctx):
        replies = [
            client.post("/api/subscribers", json={}),
            client.post("/api/subscribers", json={**ANN, "consent": "yes", "email": 5}),
            client.post("/api/subscribers", json={**ANN, "symptoms": "neck", "consent": False}),
            client.post("/api/subscribers", json={**ANN, "email": "x" * 400}),
        ]
        for reply in replies:
            for message in _bad(reply).values():
                assert message[0].isupper() and message.endswith("."), message
                for code_words in ("Input should", "Value error", "must be true", "str", "bool"):
                    assert code_words not in message, message
        not_json = client.post(
            "/api/subscribers", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert not_json.status_code == 422 and not_json.json()["detail"][0]["loc"] == ["body"]
        form = client.post("/signup", data={"email": "nope"})
        assert form.status_code == 422
        assert "Please check your email address" in form.text
        assert "Please tick the box" in form.text
