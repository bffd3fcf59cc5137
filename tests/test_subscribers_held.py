"""A signup for an address already held changes nothing about that person until the owner of the
address confirms it through the emailed link: the request is held apart (subscribers.held)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.context import AppContext
from storage import utcnow
from subscribers import store
from subscribers.tables import consent_events, signup_requests, subscriber_symptoms
from tests.support.app import ANN, app_for, ledger, link_in, person
from tests.support.cli import CLI, write_csv
from tests.support.outbox import messages, text_part
from tests.support.times import future_noon, iso

STRANGER = {
    "email": "ANN@example.com",
    "first_name": "Mallory",
    "symptoms": ["neck", "red_flag_bladder_bowel"],
    "timezone": "America/New_York",
    "consent": True,
}


def _about(ctx: AppContext) -> dict[str, Any]:
    """Everything held about Ann that a signup could touch."""
    row = person(ctx, "ann@example.com")
    assert row is not None
    with ctx.db.begin() as conn:
        symptoms = conn.execute(
            select(subscriber_symptoms.c.code).where(
                subscriber_symptoms.c.subscriber_id == row["id"]
            )
        ).scalars()
        consents = conn.execute(
            select(consent_events.c.purpose, consent_events.c.action, consent_events.c.ip).where(
                consent_events.c.subscriber_id == row["id"]
            )
        ).all()
    keep = ("first_name", "timezone", "status", "red_flag", "confirmed_at", "updated_at")
    return {
        **{k: row[k] for k in keep},
        "symptoms": sorted(symptoms),
        "consents": sorted(map(tuple, consents), key=str),
    }


def _ann_in(cli: CLI, tmp_path: Path, state: str, client: Any, ctx: AppContext) -> None:
    if state == "unconfirmed":
        assert client.post("/api/subscribers", json=ANN).status_code == 202
        return
    write_csv(tmp_path / "p.csv", ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    assert cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    if state == "unsubscribed":
        with ctx.db.begin() as conn:
            sid = store.by_email_key(conn, "ann@example.com")
            assert sid is not None and store.unsubscribe(conn, sid, utcnow(), "test")


@pytest.mark.parametrize("state", ["unconfirmed", "confirmed", "unsubscribed"])
def test_a_signup_for_a_held_address_changes_nothing_until_confirmed(
    cli: CLI, tmp_path: Path, state: str
) -> None:
    cli.env("CLINICMAIL_STAFF_EMAIL", "staff@clinic.example")
    night = future_noon().replace(hour=3)  # system email goes at any hour; campaigns do not
    with app_for(cli) as (client, ctx):
        _ann_in(cli, tmp_path, state, client, ctx)
        assert cli("tick", "--now", iso(night), "--json").code == 0
        before, sent_before = _about(ctx), ledger(ctx)
        mail_before = len(messages(ctx))

        assert client.post("/api/subscribers", json=STRANGER).status_code == 202
        assert _about(ctx) == before  # name, zone, symptoms, consent rows, status: untouched
        new = ledger(ctx)[len(sent_before) :]
        assert [(c, s.partition(":")[0], st) for c, s, st in new] == [
            ("_system", "confirm", "pending")
        ]
        assert cli("tick", "--now", iso(night.replace(minute=5)), "--json").json()["sent"] == 1
        [confirm] = messages(ctx)[mail_before:]  # no safety email, no staff alert
        assert confirm["To"].lower() == "ann@example.com"
        assert confirm["Subject"] == "Please confirm your subscription"
        body = text_part(confirm)
        assert "Hi Ann" in body and "Mallory" not in body  # the stranger's words never reach her
        assert "urgent medical care" in body  # general advice, the request had warning signs

        # Held apart, but held: the owner's export shows what was asked, and from where.
        exported = cli("subscribers", "export", "ann@example.com").json()
        [asked] = exported["held_signups"]
        assert asked["first_name"] == "Mallory" and asked["ip"] == "testclient"
        assert asked["symptoms"] == "neck;red_flag_bladder_bowel"

        link = link_in(confirm, "confirm")
        assert client.get(link).status_code == 200  # a mail scanner: still nothing changes
        assert _about(ctx) == before
        assert client.post(link).status_code == 200  # the owner confirms: applied as asked
        after = _about(ctx)
        assert after["status"] == "confirmed" and after["first_name"] == "Mallory"
        assert after["timezone"] == "America/New_York" and after["red_flag"] is True
        assert after["symptoms"] == ["neck", "red_flag_bladder_bowel"]
        assert ("email_education", "given", "testclient") in after["consents"]
        assert ("health_data", "given", "testclient") in after["consents"]
        # now, and only now: the safety email and the staff alert
        assert cli("tick", "--now", iso(night.replace(minute=10)), "--json").json()["sent"] == 2
        assert len(messages(ctx, "staff@clinic.example")) == 1
        assert "medical care" in messages(ctx, "ann@example.com")[-1]["Subject"].lower()
        assert client.post(link).status_code == 404  # a used request is gone
        assert client.get(link).status_code == 404
        with ctx.db.begin() as conn:
            assert conn.execute(select(signup_requests.c.id)).first() is None


def test_the_same_held_request_twice_sends_one_confirmation(cli: CLI, tmp_path: Path) -> None:
    with app_for(cli) as (client, ctx):
        _ann_in(cli, tmp_path, "confirmed", client, ctx)
        for _ in range(3):
            assert client.post("/api/subscribers", json=STRANGER).status_code == 202
        assert client.post("/api/subscribers", json={**STRANGER, "first_name": "Eve"}).status_code
        held = [s for _c, s, _st in ledger(ctx) if s.startswith("confirm:")]
        assert len(held) == 2  # one per distinct request
