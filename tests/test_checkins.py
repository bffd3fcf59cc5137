"""One-click check-ins: three signed links per email; a GET shows a page and stores nothing; the
POST stores the answer (latest wins) for segment rules; "worse" queues an invitation to book and
a staff notice exactly once; anything forged is a 404 and stores nothing."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from app.context import AppContext
from app.settings import load_settings
from subscribers.activity import NOTHING, activity_of
from subscribers.segments import Facts, compile_rule, parse_rule
from subscribers.tables import subscriber_activity, subscribers
from templates.checkin import QUESTION
from tests.support.app import app_for, context_for
from tests.support.backends import sqlite_only
from tests.support.cli import CLI
from tests.support.outbox import messages
from tests.support.tracking import BASE, BOOKING, ledger_rows, part, paths, send_of, set_up

AN_HOUR_LATER = "2026-11-23T11:00:00Z"
SCANNER = "Mozilla/5.0 (compatible; Proofpoint URL Defense scanner)"
PERSON = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) AppleWebKit Safari/604.1"}


def _checkin_links(ctx: AppContext, email: str) -> dict[str, str]:
    """answer → path, from the person's care-notes email (text part)."""
    (msg,) = [m for m in messages(ctx, email) if "care note" in str(m["Subject"])]
    found = {p.rsplit("/", 1)[1]: p for p in paths(part(msg, "plain"), "checkin")}
    assert set(found) == {"better", "same", "worse"}
    assert len({p.rsplit("/", 1)[0] for p in found.values()}) == 1  # one token, three answers
    return found


def _answers(ctx: AppContext) -> dict[str, str | None]:
    with ctx.db.begin() as conn:
        rows = conn.execute(
            select(subscribers.c.email_key, subscriber_activity.c.value).join(
                subscribers, subscribers.c.id == subscriber_activity.c.subscriber_id
            )
        )
        return {key: value for key, value in rows}


def _matching(ctx: AppContext, answer: str) -> tuple[set[str], set[str]]:
    """Who `checkin: answer` selects in SQL and in Python (they must agree)."""
    rule = parse_rule({"checkin": answer})
    with ctx.db.begin() as conn:
        people = {r.id: r.email_key for r in conn.execute(select(subscribers))}
        in_sql = {
            people[i]
            for i in conn.execute(select(subscribers.c.id).where(compile_rule(rule))).scalars()
        }
        facts = activity_of(conn, people)
    in_python = {
        key for i, key in people.items() if rule.matches(Facts(activity=facts.get(i, NOTHING)))
    }
    return in_sql, in_python


def _followups(ctx: AppContext) -> list[tuple[str, str]]:
    return [(step, status) for c, step, kind, status in ledger_rows(ctx) if kind == "system"]


@sqlite_only("a GET renders a page and writes nothing; storing answers is the POST tests', on both")
def test_get_shows_a_page_that_posts_the_answer_and_stores_nothing(
    cli: CLI, tmp_path: Path
) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        links = _checkin_links(ctx, "ann@example.com")
        (msg,) = messages(ctx, "ann@example.com")
        assert QUESTION in part(msg, "html") and QUESTION in part(msg, "plain")
        for path in links.values():
            assert re.search(rf'href="{re.escape(BASE + path)}"', part(msg, "html"))
        page = client.get(links["worse"], headers=PERSON)
        assert page.status_code == 200
        assert "no-store" in page.headers["cache-control"]
        assert f'<form method="post" action="{links["worse"]}"' in page.text
        assert "<button" in page.text and "Worse" in page.text
        # sends itself when a browser shows it (a script file: the CSP forbids inline script)
        assert '<script src="/assets/checkin.js"' in page.text
        assert "f.submit()" in client.get("/assets/checkin.js").text
        for _ in range(3):  # a link scanner following every link, several times
            for path in links.values():
                assert client.get(path, headers={"User-Agent": SCANNER}).status_code == 200
        assert _answers(ctx) == {}
        assert _followups(ctx) == []


def test_post_stores_the_answer_and_the_latest_answer_wins(cli: CLI, tmp_path: Path) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        ann = _checkin_links(ctx, "ann@example.com")
        bob = _checkin_links(ctx, "bob@example.com")
        reply = client.post(ann["better"], data={"via": "auto"}, headers=PERSON)
        assert reply.status_code == 200 and "Thank you" in reply.text
        assert client.post(ann["better"], data={"via": "button"}).status_code == 200  # again
        client.post(bob["same"], data={"via": "button"}, headers=PERSON)
        assert _answers(ctx) == {"ann@example.com": "better", "bob@example.com": "same"}
        assert _matching(ctx, "better") == ({"ann@example.com"}, {"ann@example.com"})
        assert _matching(ctx, "worse") == (set(), set())
        with ctx.db.begin() as conn:  # posting the same answer twice changed nothing
            (count,) = conn.execute(
                select(subscriber_activity.c.count).where(subscriber_activity.c.value == "better")
            ).one()
        assert count == 1
        # She changes her mind: the latest answer wins, for rules and branching alike.
        client.post(ann["worse"], data={"via": "button"}, headers=PERSON)
        assert _answers(ctx)["ann@example.com"] == "worse"
        assert _matching(ctx, "worse") == ({"ann@example.com"}, {"ann@example.com"})
        assert _matching(ctx, "better") == (set(), set())


def test_worse_queues_a_booking_invitation_and_a_staff_notice_exactly_once(
    cli: CLI, tmp_path: Path
) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        ann = _checkin_links(ctx, "ann@example.com")
        send_id = send_of(ctx, "ann@example.com")
        thanks = client.post(ann["worse"], data={"via": "button"}, headers=PERSON)
        assert thanks.status_code == 200
        assert f'href="{BOOKING}"' in thanks.text and "urgent care" in thanks.text
        # the warning-signs table's tiers: fever the same day, not the emergency number
        assert "Call 999 or go to the nearest emergency department now" in thanks.text
        urgent_tier = thanks.text.split("NHS 111 or your GP the same day")[1]
        assert "a fever" in urgent_tier and "clumsy hands" in urgent_tier
        for answer in ("worse", "better", "worse", "same", "worse"):
            assert client.post(ann[answer], data={"via": "button"}).status_code == 200
        queued = sorted(_followups(ctx))
        assert queued == [
            (f"checkin-followup:{send_id}", "pending"),
            (f"checkin-staff:{send_id}", "pending"),
        ]
        public_id = _public_id(ctx, "ann@example.com")
    run = cli("tick", "--now", AN_HOUR_LATER, "--json")
    assert run.code == 0, run.err
    with context_for(cli) as ctx:
        assert sorted(_followups(ctx)) == [
            (f"checkin-followup:{send_id}", "sent"),
            (f"checkin-staff:{send_id}", "sent"),
        ]
        invite = [m for m in messages(ctx, "ann@example.com") if "care note" not in m["Subject"]]
        assert len(invite) == 1
        subject, text = str(invite[0]["Subject"]), part(invite[0], "plain")
        assert "Annabel" in text and f"({BOOKING})" in text
        assert "seek urgent care" in text.lower() and "999" in text
        assert "not medical advice" in text  # the footer's disclaimer
        assert invite[0]["List-Unsubscribe"].startswith(f"<{BASE}/unsubscribe/")
        assert "worse" not in subject.lower()
        # (The answer came on the suite's Saturday clock; by Monday's tick its follow-up is
        # past due, so staff also got the follow-up reminder: tests/test_followups.py.)
        (notice,) = [
            m for m in messages(ctx, "team@clinic.example") if "Reminder" not in m["Subject"]
        ]
        notice_subject, notice_text = str(notice["Subject"]), part(notice, "plain")
        said = notice_text.split("You are receiving this")[0]  # what the notice itself says
        assert f"{BASE}/admin/subscribers/{public_id}" in notice_text
        for secret in ("ann", "annabel", "worse", "sciatica", "lower_back", "back pain"):
            assert secret not in notice_subject.lower()
        for secret in ("ann@", "annabel", "worse", "sciatica", "lower_back"):
            assert secret not in said.lower() and secret not in notice_text.lower().replace(
                "getting worse", ""
            )
    # A later tick sends nothing more, and answering again queues nothing more.
    assert cli("tick", "--now", "2026-11-23T12:00:00Z", "--json").json()["sent"] == 0
    with app_for(cli) as (client, ctx):
        client.post(ann["better"], data={"via": "button"})
        client.post(ann["worse"], data={"via": "button"})
        assert len(_followups(ctx)) == 2


def _public_id(ctx: AppContext, email: str) -> str:
    with ctx.db.begin() as conn:
        return str(
            conn.execute(
                select(subscribers.c.public_id).where(subscribers.c.email_key == email)
            ).scalar_one()
        )


@sqlite_only("a link is judged by its signature before any write")
def test_forged_or_foreign_check_in_links_are_404_and_store_nothing(
    cli: CLI, tmp_path: Path
) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        links = _checkin_links(ctx, "ann@example.com")
        token = links["worse"].split("/")[2]
        send_id, sig = token.split(".")
        signer = ctx.tokens
        # The first character: the last one of a base64 signature may carry only padding bits.
        flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
        forged = [
            f"/checkin/{send_id}.{flipped}/worse",  # tampered
            f"/checkin/{send_id}/worse",  # unsigned
            f"/checkin/{send_id}.{signer.signature('click', send_id)}/worse",  # other purpose
            f"/checkin/{'0' * 32}.{signer.signature('checkin', '0' * 32)}/worse",  # no such send
            f"/checkin/{token}/terrible",  # not an answer
            f"/checkin/{token}/WORSE",
            f"/checkin/ann@example.com.{sig}/worse",
        ]
        for path in forged:
            assert client.get(path).status_code == 404, path
            reply = client.post(path, data={"via": "button"})
            assert reply.status_code == 404, path
            assert "not valid" in reply.text
        assert _answers(ctx) == {}
        assert _followups(ctx) == []


@sqlite_only("a scanner is told by its request, before any write")
def test_an_automatic_post_that_looks_like_a_scanner_is_not_recorded(
    cli: CLI, tmp_path: Path
) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        links = _checkin_links(ctx, "bob@example.com")
        reply = client.post(links["worse"], data={"via": "auto"}, headers={"User-Agent": SCANNER})
        assert reply.status_code == 200
        assert "<button" in reply.text and "/assets/checkin.js" not in reply.text  # asks a click
        headless = {"User-Agent": "Mozilla/5.0 HeadlessChrome/131.0"}
        client.post(links["worse"], data={"via": "auto"}, headers=headless)
        assert _answers(ctx) == {} and _followups(ctx) == []
        # A press of the button is a person's answer, whatever their browser says.
        client.post(links["worse"], data={"via": "button"}, headers=headless)
        assert _answers(ctx) == {"bob@example.com": "worse"}
        assert len(_followups(ctx)) == 2


@sqlite_only("where the notice goes is a setting; queueing it once is the worse test's, on both")
def test_without_a_staff_address_the_notice_goes_to_the_from_address(
    cli: CLI, tmp_path: Path
) -> None:
    set_up(cli, tmp_path)
    cli.env("CLINICMAIL_STAFF_EMAIL", None)
    # An alert always has somewhere to go: the clinic's own sending address.
    assert load_settings().staff_email == load_settings().from_email == "care@clinic.example"
    with app_for(cli) as (client, ctx):
        links = _checkin_links(ctx, "bob@example.com")
        client.post(links["worse"], data={"via": "button"}, headers=PERSON)
        assert sorted(step.split(":")[0] for step, _ in _followups(ctx)) == [
            "checkin-followup",
            "checkin-staff",
        ]


@sqlite_only("a page's words, from settings")
def test_the_worse_page_names_the_clinics_own_lines(cli: CLI, tmp_path: Path) -> None:
    cli.env("CLINICMAIL_EMERGENCY_NUMBER", "911")
    cli.env("CLINICMAIL_URGENT_ADVICE", "the Nurse Advice Line")
    cli.env("CLINICMAIL_FAMILY_DOCTOR", "family doctor")
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        ann = _checkin_links(ctx, "ann@example.com")
        thanks = client.post(ann["worse"], data={"via": "button"}, headers=PERSON).text
        assert "Call 911 or go to the nearest emergency department now" in thanks
        assert "the Nurse Advice Line or your family doctor the same day" in thanks
        assert not re.search(r"\b999\b|NHS 111|A&amp;E|\bGP\b", thanks)
