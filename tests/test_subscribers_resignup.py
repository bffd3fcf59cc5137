"""Coming back: someone who unsubscribed and signs up again stays unsubscribed, and gets a NEW
confirmation email naming that request; no campaign email until they confirm it, and then their
series resumes where it stopped. A suppressed (bounced, complained, erased) address is never
re-added or mailed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from campaigns.ledger import sends
from storage import utcnow
from subscribers import held, store
from subscribers.housekeeping import expire_unconfirmed
from subscribers.tables import consent_events
from tests.support.app import ANN, app_for, ledger, link_in, person
from tests.support.backends import sqlite_only
from tests.support.cli import CLI, write_csv
from tests.support.outbox import messages
from tests.support.times import future_noon, iso

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _sent(cli: CLI, when: object) -> int:
    run = cli("tick", "--now", iso(when), "--json")  # type: ignore[arg-type]
    assert run.code == 0, run.err
    return int(run.json()["sent"])


def _unsubscribe(client: object, msg: object) -> None:
    url = msg["List-Unsubscribe"].split(",")[0].strip().strip("<>")  # type: ignore[index]
    path = url.removeprefix("https://mail.clinic.example")
    assert client.post(path, data=ONE_CLICK).status_code == 200  # type: ignore[attr-defined]


def test_signing_up_again_after_unsubscribing_needs_a_new_confirmation(cli: CLI) -> None:
    t = future_noon()
    with app_for(cli) as (client, ctx):
        assert client.post("/api/subscribers", json=ANN).status_code == 202
        assert _sent(cli, t) == 1
        first_confirm = messages(ctx, "ann@example.com")[-1]
        assert client.post(link_in(first_confirm, "confirm")).status_code == 200
        assert _sent(cli, t + timedelta(minutes=1)) == 1  # the series' first email
        _unsubscribe(client, messages(ctx, "ann@example.com")[-1])
        assert person(ctx, "ann@example.com")["status"] == "unsubscribed"  # type: ignore[index]

        # They come back through the JSON API: held apart, nothing changes until confirmed.
        assert client.post("/api/subscribers", json=ANN).status_code == 202
        row = person(ctx, "ann@example.com")
        assert row is not None and row["status"] == "unsubscribed"
        confirms = [s for s in ledger(ctx) if s[1].startswith("confirm")]
        assert confirms[0] == ("_system", "confirm", "sent")
        assert [(c, s.partition(":")[0], st) for c, s, st in confirms[1:]] == [
            ("_system", "confirm", "pending")
        ]
        assert _sent(cli, t + timedelta(days=1)) == 1
        second_confirm = messages(ctx, "ann@example.com")[-1]
        assert "confirm" in second_confirm["Subject"].lower()
        # The same signup again before confirming does not send a third.
        assert client.post("/api/subscribers", json=ANN).status_code == 202
        assert len([s for s in ledger(ctx) if s[1].startswith("confirm")]) == 2
        # No campaign email until the new link is clicked, however many weeks pass.
        for weeks in range(1, 3):
            assert _sent(cli, t + timedelta(days=1, weeks=weeks)) == 0
        assert client.get(link_in(second_confirm, "confirm")).status_code == 200
        assert person(ctx, "ann@example.com")["status"] == "unsubscribed"  # type: ignore[index]
        assert client.post(link_in(second_confirm, "confirm")).status_code == 200
        assert person(ctx, "ann@example.com")["status"] == "confirmed"  # type: ignore[index]
        later = t + timedelta(days=1, weeks=3)
        assert _sent(cli, later) == 1
        series = [s for s in ledger(ctx) if s[0] == "spasm-education"]
        # The series resumed where it stopped: week two's email, not week one's again.
        assert series == [
            ("spasm-education", "why-your-back-locks-up", "sent"),
            ("spasm-education", "the-first-few-days", "sent"),
        ]
        with ctx.db.begin() as conn:
            actions = [
                a
                for (a,) in conn.execute(
                    select(consent_events.c.action)
                    .where(consent_events.c.purpose == store.EMAIL_PURPOSE)
                    .order_by(consent_events.c.id)
                )
            ]
        assert actions == ["given", "confirmed", "withdrawn", "given", "confirmed"]


def test_the_hosted_form_also_sends_a_new_confirmation(cli: CLI, tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    write_csv(tmp_path / "p.csv", ["bob@example.com,Bob,neck,Europe/London,yes,,"])
    assert cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    t = future_noon()
    with app_for(cli) as (client, ctx):
        assert _sent(cli, t) == 1
        _unsubscribe(client, messages(ctx, "bob@example.com")[-1])
        form = {"email": "bob@example.com", "first_name": "Bob", "consent": "yes"}
        assert client.post("/signup", data=form).status_code == 200
        assert next(s for s in ledger(ctx) if s[1].startswith("confirm:"))[2] == "pending"
        assert _sent(cli, t + timedelta(hours=1)) == 1
        assert "confirm" in messages(ctx, "bob@example.com")[-1]["Subject"].lower()


def test_suppressed_or_erased_addresses_are_never_re_added(cli: CLI, tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    write_csv(
        tmp_path / "p.csv",
        [
            "cal@example.com,Cal,neck,Europe/London,yes,,",
            "dot@example.com,Dot,neck,Europe/London,yes,,",
        ],
    )
    assert cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    t = future_noon()
    with app_for(cli) as (client, ctx):
        assert _sent(cli, t) == 2
        # Cal complained (suppressed and unsubscribed); Dot asked to be erased.
        with ctx.db.begin() as conn:
            cal = store.by_email_key(conn, "cal@example.com")
            assert cal is not None
            store.suppress(conn, "cal@example.com", "complaint", utcnow())
            store.unsubscribe(conn, cal, utcnow(), "test")
        assert cli("subscribers", "erase", "dot@example.com").code == 0
        before = ledger(ctx)
        for email in ("cal@example.com", "DOT@example.com"):
            assert client.post("/api/subscribers", json={**ANN, "email": email}).status_code == 202
            assert (
                client.post("/signup", data={"email": email, "consent": "yes"}).status_code == 200
            )
        assert ledger(ctx) == before
        assert person(ctx, "cal@example.com")["status"] == "unsubscribed"  # type: ignore[index]
        assert person(ctx, "dot@example.com") is None
        assert _sent(cli, t + timedelta(days=8)) == 0


def test_an_unconfirmed_return_expires_and_leaves_them_unsubscribed(cli: CLI) -> None:
    t = future_noon()
    with app_for(cli) as (client, ctx):
        assert client.post("/api/subscribers", json=ANN).status_code == 202
        assert _sent(cli, t) == 1
        assert client.post(link_in(messages(ctx)[-1], "confirm")).status_code == 200
        assert _sent(cli, t + timedelta(minutes=1)) == 1
        _unsubscribe(client, messages(ctx)[-1])
        assert client.post("/api/subscribers", json=ANN).status_code == 202
        assert _sent(cli, t + timedelta(minutes=2)) == 1
        link = link_in(messages(ctx)[-1], "confirm")
        with ctx.db.begin() as conn:
            assert held.expire(conn, utcnow() + timedelta(days=1)) == 0
            assert held.expire(conn, utcnow() + timedelta(days=8)) == 1
            assert expire_unconfirmed(conn, utcnow() + timedelta(days=8)) == 0
        row = person(ctx, "ann@example.com")
        assert row is not None and row["status"] == "unsubscribed"  # history kept
        assert client.post(link).status_code == 404  # the expired request is gone
        assert person(ctx, "ann@example.com")["status"] == "unsubscribed"  # type: ignore[index]
        with ctx.db.begin() as conn:
            kept = conn.execute(select(sends.c.step_id).order_by(sends.c.id)).scalars().all()
        assert "why-your-back-locks-up" in kept


@sqlite_only("a link is judged by its signature before any query")
def test_forged_confirmation_links_change_nothing(cli: CLI) -> None:
    """Issue #3: a forged, tampered or foreign token is a 404 and changes nothing."""
    from subscribers.tokens import Tokens

    t = future_noon()
    with app_for(cli) as (client, ctx):
        assert client.post("/api/subscribers", json=ANN).status_code == 202
        assert client.post("/api/subscribers", json={**ANN, "email": "b@example.com"}).status_code
        assert _sent(cli, t) == 2
        ann = person(ctx, "ann@example.com")
        assert ann is not None
        public_id = str(ann["public_id"])
        for bad in (
            Tokens(["a-stranger's-key"]).make("confirm", public_id),  # not our key
            ctx.tokens.make("unsubscribe", public_id),  # ours, for another purpose
            link_in(messages(ctx, "ann@example.com")[-1], "confirm").rsplit("/", 1)[1][:-4]
            + "AAAA",  # tampered
            "garbage",
        ):
            assert client.get(f"/confirm/{bad}").status_code == 404
            assert client.post(f"/confirm/{bad}").status_code == 404
        assert person(ctx, "ann@example.com")["status"] == "unconfirmed"  # type: ignore[index]
        # Ann's real link confirms Ann, and only Ann.
        assert client.post(link_in(messages(ctx, "ann@example.com")[-1], "confirm")).status_code
        assert person(ctx, "ann@example.com")["status"] == "confirmed"  # type: ignore[index]
        assert person(ctx, "b@example.com")["status"] == "unconfirmed"  # type: ignore[index]
