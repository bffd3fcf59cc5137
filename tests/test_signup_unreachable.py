"""202 means stored: a signup while the database cannot be reached is answered 503 with
`Retry-After` (JSON on the API, a plain "try again in a few minutes" page on the form), and the
client's retry once the database is back stores it. Driven against a real `clinicmail serve`
process whose database really stops answering: PostgreSQL behind a proxy that is cut, SQLite
on a "disk" that refuses every write."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from campaigns.ledger import sends
from subscribers.tables import subscribers
from tests.support.backends import BACKENDS
from tests.support.outage import serving_through_outages

SIGNUP = {"email": "", "first_name": "Ann", "symptoms": ["neck"], "consent": True}


def _stored(db: str) -> dict[str, list[str]]:
    """Each stored address and the system emails queued for it."""
    engine = create_engine(db)
    try:
        with engine.begin() as conn:
            people = conn.execute(select(subscribers.c.id, subscribers.c.email_key)).all()
            queued = conn.execute(select(sends.c.subscriber_id, sends.c.step_id)).all()
    finally:
        engine.dispose()
    return {
        p.email_key: sorted(q.step_id for q in queued if q.subscriber_id == p.id) for p in people
    }


@pytest.mark.real_clock
@pytest.mark.parametrize("backend", BACKENDS)
def test_signup_while_the_database_is_unreachable_is_503_and_the_retry_is_stored(
    backend: str, tmp_path: Path
) -> None:
    with (
        serving_through_outages(backend, tmp_path) as (base, db, outage, log),
        httpx.Client(base_url=base) as web,
    ):
        before = web.post("/api/subscribers", json={**SIGNUP, "email": "before@example.com"})
        assert before.status_code == 202, before.text
        with outage():
            api = web.post("/api/subscribers", json={**SIGNUP, "email": "during@example.com"})
            assert api.status_code == 503, api.text
            assert int(api.headers["retry-after"]) > 0
            assert api.headers["content-type"].startswith("application/json")
            assert "try again" in api.json()["detail"]
            form = web.post(
                "/signup",
                data={"email": "form@example.com", "first_name": "Bo", "consent": "yes"},
            )
            assert form.status_code == 503, form.text
            assert int(form.headers["retry-after"]) > 0
            assert form.headers["content-type"].startswith("text/html")
            assert "please try again in a few minutes" in form.text.lower()
            assert "Check your inbox" not in form.text
        # The database is back: the clients try again, and nothing was lost.
        again = web.post("/api/subscribers", json={**SIGNUP, "email": "during@example.com"})
        assert again.status_code == 202, again.text
        form = web.post(
            "/signup", data={"email": "form@example.com", "first_name": "Bo", "consent": "yes"}
        )
        assert form.status_code == 200 and "Check your inbox" in form.text
    # One line per refused signup, naming no one.
    assert "the database is unreachable" in log[0]
    assert "@example.com" not in log[0] and "Ann" not in log[0]
    assert _stored(db) == {
        "before@example.com": ["confirm"],
        "during@example.com": ["confirm"],
        "form@example.com": ["confirm"],
    }
