"""Signup through the JSON API and the hosted form, and the full double opt-in: nothing but the
confirmation email before the link is clicked; a red-flag signup gets the safety email at once
and never a campaign email."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from subscribers import consent
from subscribers.tables import consent_events, subscriber_symptoms, subscribers
from subscribers.web import urgent_care
from templates import warning_signs
from tests.support.app import app_for, ledger, link_in, person
from tests.support.backends import sqlite_only
from tests.support.cli import CLI, write_csv
from tests.support.outbox import messages, text_part
from tests.support.times import future_noon, iso

ANN = {
    "email": "Ann@Example.com",
    "first_name": "Ann",
    "symptoms": ["lower_back", "sciatica"],
    "timezone": "Europe/London",
    "consent": True,
}


def _counts(ctx: object) -> tuple[int, int, int]:
    from app.context import AppContext

    assert isinstance(ctx, AppContext)
    with ctx.db.begin() as conn:
        return (
            conn.execute(select(func.count()).select_from(subscribers)).scalar_one(),
            conn.execute(select(func.count()).select_from(subscriber_symptoms)).scalar_one(),
            conn.execute(select(func.count()).select_from(consent_events)).scalar_one(),
        )


def test_signup_stores_unconfirmed_with_consent_record(cli: CLI) -> None:
    with app_for(cli) as (client, ctx):
        reply = client.post(
            "/api/subscribers", json=ANN, headers={"User-Agent": "pytest-browser/1.0"}
        )
        assert reply.status_code == 202, reply.text
        row = person(ctx, "ann@example.com")
        assert row is not None
        assert row["status"] == "unconfirmed" and row["first_name"] == "Ann"
        assert row["email"] == "Ann@example.com"  # domain normalised, local part kept
        with ctx.db.begin() as conn:
            events = (
                conn.execute(select(consent_events).order_by(consent_events.c.id)).mappings().all()
            )
        assert [(e["purpose"], e["action"]) for e in events] == [
            ("email_education", "given"),
            ("health_data", "given"),
        ]
        for e in events:
            assert e["wording_version"] == consent.VERSION
            assert e["wording_hash"] == consent.wording_hash(e["purpose"])
            assert len(e["wording_hash"]) == 64
            assert e["ip"] == "testclient"
            assert e["user_agent"] == "pytest-browser/1.0"
        assert ledger(ctx) == [("_system", "confirm", "pending")]


@sqlite_only("refused before anything is stored")
def test_bad_input_names_each_field_and_stores_nothing(cli: CLI) -> None:
    with app_for(cli) as (client, ctx):
        reply = client.post(
            "/api/subscribers",
            json={
                "email": "not-an-address",
                "first_name": "Bo",
                "symptoms": ["lower_back", "sore_toe"],
                "timezone": "Mars/Olympus",
                "consent": False,
            },
        )
        assert reply.status_code == 422
        detail = reply.json()["detail"]
        bad = {d["loc"][-1]: d["msg"] for d in detail}
        assert set(bad) == {"email", "symptoms", "timezone", "consent"}
        assert "sore_toe" in bad["symptoms"]
        assert "Mars/Olympus" in bad["timezone"]
        assert "consent" in bad["consent"]
        missing = client.post("/api/subscribers", json={"email": "x@example.com"})
        assert missing.status_code == 422
        assert {d["loc"][-1] for d in missing.json()["detail"]} == {"consent"}
        stringy = client.post("/api/subscribers", json={**ANN, "consent": "yes"})
        assert stringy.status_code == 422
        assert _counts(ctx) == (0, 0, 0)
        assert ledger(ctx) == []


def test_repeat_signup_reveals_nothing(cli: CLI, tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    write_csv(tmp_path / "known.csv", ["known@example.com,Kim,neck,Europe/London,yes,,"])
    assert cli("subscribers", "import", str(tmp_path / "known.csv")).code == 0
    with app_for(cli) as (client, ctx):
        before = (_counts(ctx), ledger(ctx))
        known = client.post("/api/subscribers", json={**ANN, "email": "KNOWN@example.com"})
        fresh = client.post("/api/subscribers", json={**ANN, "email": "new@example.com"})
        assert known.status_code == fresh.status_code == 202
        assert known.json() == fresh.json()
        row = person(ctx, "known@example.com")
        assert row is not None and row["status"] == "confirmed" and row["first_name"] == "Kim"
        # the known address got nothing new: no consent rows, no email
        assert _counts(ctx)[2] == before[0][2] + 2  # only the new person's two events
        assert [s for s in ledger(ctx) if s[1] == "confirm"] == [("_system", "confirm", "pending")]
        # signing up twice before confirming queues one confirmation email, not two
        again = client.post("/api/subscribers", json={**ANN, "email": "new@example.com"})
        assert again.status_code == 202
        assert [s for s in ledger(ctx) if s[1] == "confirm"] == [("_system", "confirm", "pending")]


def test_rate_limit_per_ip(cli: CLI) -> None:
    with app_for(cli) as (client, _ctx):
        codes = [
            client.post("/api/subscribers", json={**ANN, "email": f"p{i}@example.com"}).status_code
            for i in range(11)
        ]
        assert codes == [202] * 10 + [429]
        limited = client.post("/api/subscribers", json={**ANN, "email": "late@example.com"})
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
        assert client.post("/signup", data={"email": "f@example.com"}).status_code == 429


def test_double_opt_in_end_to_end(cli: CLI) -> None:
    t1 = future_noon()
    with app_for(cli) as (client, ctx):
        assert client.post("/api/subscribers", json=ANN).status_code == 202
        first = cli("tick", "--now", iso(t1), "--json")
        assert first.code == 0, first.err
        assert first.json()["sent"] == 1
        [confirm] = messages(ctx)
        assert confirm["To"].lower() == "ann@example.com"
        assert "confirm" in confirm["Subject"].lower()
        # no campaign email before confirmation, however many ticks pass
        assert cli("tick", "--now", iso(t1 + timedelta(days=8)), "--json").json()["sent"] == 0
        path = link_in(confirm, "confirm")
        assert client.get(path[:-2] + "xx").status_code == 404  # a tampered link changes nothing
        assert person(ctx, "ann@example.com")["status"] == "unconfirmed"  # type: ignore[index]
        # GET (what a mail scanner does) shows a button and changes nothing; POST confirms.
        page = client.get(path)
        assert page.status_code == 200 and f'action="{path}"' in page.text
        assert 'method="post"' in page.text
        assert person(ctx, "ann@example.com")["status"] == "unconfirmed"  # type: ignore[index]
        assert client.post(path[:-2] + "xx").status_code == 404
        done = client.post(path)
        assert done.status_code == 200 and "subscribed" in done.text
        assert person(ctx, "ann@example.com")["status"] == "confirmed"  # type: ignore[index]
        t2 = t1 + timedelta(days=8, minutes=1)
        after = cli("tick", "--now", iso(t2), "--json").json()
        assert after["sent"] == 1
        campaign_mail = messages(ctx)[-1]
        assert campaign_mail["List-Unsubscribe"].startswith(
            f"<{'https://mail.clinic.example'}/unsubscribe/"
        )
        assert [s[0] for s in ledger(ctx)] == ["_system", "spasm-education"]
        # clicking the link again changes nothing
        assert client.post(path).status_code == 200
        assert cli("tick", "--now", iso(t2 + timedelta(minutes=1)), "--json").json()["sent"] == 0


def test_red_flag_web_signup_is_told_at_once_and_mailed_only_to_confirm(cli: CLI) -> None:
    cli.env("CLINICMAIL_STAFF_EMAIL", "staff@clinic.example")
    t1 = future_noon()
    with app_for(cli) as (client, ctx):
        body = {
            **ANN,
            "email": "rf@example.com",
            "symptoms": ["lower_back", "red_flag_bladder_bowel"],
        }
        answer = client.post("/api/subscribers", json=body)
        assert answer.status_code == 202
        urgent = answer.json()["urgent_care"]  # shown at once
        assert "urgent medical care" in urgent and "999" in urgent
        # The warning-signs table's urgent tiers, the same whatever was ticked: it reveals nothing.
        assert urgent == urgent_care(warning_signs.UK_LINES) and "chest pain" in urgent
        # Until the address is confirmed the only email is the confirmation (it may not be
        # theirs), at once even at 03:00 London, with a general urgent-care note; no staff alert.
        night = t1.replace(hour=3)
        assert cli("tick", "--now", iso(night), "--json").json()["sent"] == 1
        [confirm] = messages(ctx)
        assert confirm["To"].lower() == "rf@example.com"
        assert confirm["Subject"] == "Please confirm your subscription"
        note = text_part(confirm).split("Thanks for signing up")[0]  # the part added for them
        assert "medical care now" in note and "999" in note
        # the table's two urgent tiers, the same for every red flag (nothing names what was ticked)
        assert "NHS 111 or your GP the same day" in note and "chest pain" in note
        # Once confirmed: the safety email and the staff alert, at once; never a campaign.
        assert client.post(link_in(confirm, "confirm")).status_code == 200
        assert cli("tick", "--now", iso(night + timedelta(minutes=1)), "--json").json()["sent"] == 2
        to_them = messages(ctx, "rf@example.com")
        assert len(to_them) == 2 and "medical care" in to_them[-1]["Subject"].lower()
        assert len(messages(ctx, "staff@clinic.example")) == 1
        for weeks in range(1, 4):
            later = t1 + timedelta(weeks=weeks)
            assert cli("tick", "--now", iso(later), "--json").json()["sent"] == 0
        assert all(s[0] == "_system" for s in ledger(ctx))


def test_a_plain_signup_gets_no_urgent_note(cli: CLI) -> None:
    with app_for(cli) as (client, ctx):
        answer = client.post("/api/subscribers", json=ANN)
        assert answer.status_code == 202 and "urgent_care" not in answer.json()
        assert cli("tick", "--now", iso(future_noon()), "--json").json()["sent"] == 1
        # Every footer carries the general disclaimer; the red-flag note is not there.
        assert "get urgent medical care now" not in text_part(messages(ctx)[0]).lower()


@sqlite_only("a page's markup")
def test_hosted_form_page_is_accessible(cli: CLI) -> None:
    with app_for(cli) as (client, _ctx):
        page = client.get("/signup")
        assert page.status_code == 200
        html = page.text
        assert '<html lang="en">' in html
        assert 'action="/signup"' in html and 'method="post"' in html
        assert '<label for="email">' in html and 'id="email"' in html
        # symptoms grouped by taxonomy, one fieldset per group with a legend
        assert html.count("<fieldset") == 7 and html.count("<legend>") == 7
        assert 'value="red_flag_saddle_numbness"' in html and 'class="red-flag"' in html
        # the two consents are separate, unticked boxes with the versioned wording
        assert 'name="consent" value="yes">' in html
        assert 'name="health_consent" value="yes">' in html
        assert consent.WORDING["email_education"] in html
        assert consent.WORDING["health_data"] in html
        # urgent-care message: shown by script when a red flag is ticked, static without script
        assert 'id="urgent" role="alert" hidden' in html
        assert "<noscript>" in html and "999" in html
        assert '<script src="/assets/signup.js" defer></script>' in html  # no inline script (CSP)


@sqlite_only("refused before anything is stored")
def test_hosted_form_validates_like_the_api(cli: CLI) -> None:
    with app_for(cli) as (client, ctx):
        bad = client.post(
            "/signup",
            data={
                "email": "nope",
                "first_name": "<b>Bo</b>",
                "symptoms": ["lower_back", "sciatica"],
                "timezone": "Nowhere/City",
            },
        )
        assert bad.status_code == 422
        html = bad.text
        assert 'role="alert"' in html
        for field in ("email", "timezone", "consent", "health_consent"):
            assert f'href="#{field}"' in html and f'id="{field}-error"' in html
        assert "<b>Bo</b>" not in html and "&lt;b&gt;Bo&lt;/b&gt;" in html  # escaped, kept
        assert 'value="sciatica" id="symptom-sciatica" checked' in html  # ticks kept
        assert _counts(ctx) == (0, 0, 0)
        good = client.post(
            "/signup",
            data={
                "email": "form@example.com",
                "first_name": "Flo",
                "symptoms": ["neck", "desk_posture"],
                "timezone": "Europe/Paris",
                "consent": "yes",
                "health_consent": "yes",
            },
        )
        assert good.status_code == 200 and "inbox" in good.text
        row = person(ctx, "form@example.com")
        assert (
            row is not None and row["status"] == "unconfirmed" and row["timezone"] == "Europe/Paris"
        )
        assert ledger(ctx) == [("_system", "confirm", "pending")]
        # without symptoms the health-data box is not needed
        plain = client.post("/signup", data={"email": "plain@example.com", "consent": "yes"})
        assert plain.status_code == 200
