"""Links in emails: one-click unsubscribe (RFC 8058), key rotation, and the preference centre."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app.context import AppContext
from campaigns import ledger as send_ledger
from campaigns.ledger import CAMPAIGN
from subscribers.tables import consent_events, subscriber_symptoms, subscribers
from subscribers.tokens import Tokens
from tests.support.app import app_for, ledger, link_in, person
from tests.support.backends import sqlite_only
from tests.support.cli import CLI, write_csv
from tests.support.outbox import messages
from tests.support.times import future_noon, iso

MONDAY_10_LONDON = "2026-11-23T10:00:00Z"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _two_people(cli: CLI, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "people.csv",
        [
            "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
            "bob@example.com,Bob,neck;desk_posture,Europe/London,yes,,",
        ],
    )
    assert cli("subscribers", "import", str(path)).code == 0
    assert cli("tick", "--now", MONDAY_10_LONDON, "--json").json()["sent"] == 2


def _unsubscribe_path(ctx: AppContext, email: str) -> str:
    header = messages(ctx, email)[-1]["List-Unsubscribe"]
    url = header.split(",")[0].strip().strip("<>")
    assert url.startswith("https://mail.clinic.example/unsubscribe/")
    return url.removeprefix("https://mail.clinic.example")


def _status(ctx: AppContext, email: str) -> object:
    row = person(ctx, email)
    assert row is not None
    return row["status"]


@sqlite_only("a GET renders a page and writes nothing")
def test_get_shows_a_page_and_changes_nothing(cli: CLI, tmp_path: Path) -> None:
    _two_people(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        path = _unsubscribe_path(ctx, "ann@example.com")
        page = client.get(path)
        assert page.status_code == 200
        assert f'<form method="post" action="{path}">' in page.text
        assert "<button" in page.text
        assert "ann@example.com" not in page.text  # the page does not reveal the address
        assert _status(ctx, "ann@example.com") == "confirmed"
        assert "ann" not in path.lower() and "example" not in path


def test_one_click_post_unsubscribes_and_later_ticks_send_nothing(cli: CLI, tmp_path: Path) -> None:
    _two_people(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        ann = person(ctx, "ann@example.com")
        assert ann is not None
        with ctx.db.begin() as conn:  # an email already queued when she clicks
            send_ledger.plan(
                conn,
                [
                    send_ledger.new_row(
                        subscriber_id=int(str(ann["id"])),
                        campaign_id="spasm-education",
                        step_id="queued-before-unsubscribe",
                        variant_id="default",
                        kind=CAMPAIGN,
                        now=datetime(2026, 11, 23, 10, 30, tzinfo=UTC),
                    )
                ],
            )
        reply = client.post(_unsubscribe_path(ctx, "ann@example.com"), data=ONE_CLICK)
        assert reply.status_code == 200 and "unsubscribed" in reply.text
        assert _status(ctx, "ann@example.com") == "unsubscribed"
        assert _status(ctx, "bob@example.com") == "confirmed"
        with ctx.db.begin() as conn:
            actions = (
                conn.execute(
                    select(consent_events.c.action)
                    .where(consent_events.c.subscriber_id == ann["id"])
                    .order_by(consent_events.c.id)  # PostgreSQL keeps no order unasked
                )
                .scalars()
                .all()
            )
        assert actions[-1] == "withdrawn"
        # a second click is harmless
        assert (
            client.post(_unsubscribe_path(ctx, "ann@example.com"), data=ONE_CLICK).status_code
            == 200
        )
        tick = cli("tick", "--now", "2026-11-23T11:00:00Z", "--json").json()
        assert tick["sent"] == 0 and tick["cancelled"] == 1
        assert ("spasm-education", "queued-before-unsubscribe", "cancelled") in ledger(ctx)
        week_later = cli("tick", "--now", "2026-11-30T10:00:00Z", "--json").json()
        assert week_later["sent"] == 1  # Bob's second email; nothing for Ann
        assert len(messages(ctx, "ann@example.com")) == 1
        assert len(messages(ctx, "bob@example.com")) == 2


@sqlite_only("a token is judged by its signature before any query")
def test_forged_or_tampered_tokens_change_nothing(cli: CLI, tmp_path: Path) -> None:
    _two_people(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        real = _unsubscribe_path(ctx, "ann@example.com")
        token = real.rsplit("/", 1)[1]
        tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        payload, _, _sig = token.rpartition(".")
        forged_by_stranger = Tokens(["not-our-key"]).make("unsubscribe", "x" * 32)
        ann = person(ctx, "ann@example.com")
        assert ann is not None
        other_purpose = ctx.tokens.make("preferences", str(ann["public_id"]))
        for bad in (tampered, payload, forged_by_stranger, "garbage", other_purpose):
            assert client.get(f"/unsubscribe/{bad}").status_code == 404
            assert client.post(f"/unsubscribe/{bad}", data=ONE_CLICK).status_code == 404
        assert client.post(f"/preferences/{tampered}", data={"action": "leave"}).status_code == 404
        assert _status(ctx, "ann@example.com") == _status(ctx, "bob@example.com") == "confirmed"
        # Bob's token only ever unsubscribes Bob
        assert (
            client.post(_unsubscribe_path(ctx, "bob@example.com"), data=ONE_CLICK).status_code
            == 200
        )
        assert _status(ctx, "bob@example.com") == "unsubscribed"
        assert _status(ctx, "ann@example.com") == "confirmed"


def test_key_rotation_keeps_old_links_working(cli: CLI, tmp_path: Path) -> None:
    cli.env("CLINICMAIL_SECRET_KEY", "old-key-0123456789-0123456789-0123456789")
    _two_people(cli, tmp_path)
    cli.env(
        "CLINICMAIL_SECRET_KEY",
        "old-key-0123456789-0123456789-0123456789,new-key-9876543210-9876543210-9876543210",
    )
    with app_for(cli) as (client, ctx):
        old_link = _unsubscribe_path(ctx, "ann@example.com")
        assert client.get(old_link).status_code == 200
        bob_id = str(person(ctx, "bob@example.com")["public_id"])  # type: ignore[index]
        new_only = Tokens(["new-key-9876543210-9876543210-9876543210"]).make("unsubscribe", bob_id)
        assert ctx.tokens.make("unsubscribe", bob_id) == new_only  # new links use the new key
        assert client.post(old_link, data=ONE_CLICK).status_code == 200
        assert client.post(f"/unsubscribe/{new_only}", data=ONE_CLICK).status_code == 200
        assert _status(ctx, "ann@example.com") == _status(ctx, "bob@example.com") == "unsubscribed"
    cli.env(
        "CLINICMAIL_SECRET_KEY", "new-key-9876543210-9876543210-9876543210"
    )  # the old key retired
    with app_for(cli) as (client, _ctx):
        assert client.get(old_link).status_code == 404


def _codes(ctx: AppContext, email: str) -> set[str]:
    row = person(ctx, email)
    assert row is not None
    with ctx.db.begin() as conn:
        return set(
            conn.execute(
                select(subscriber_symptoms.c.code).where(
                    subscriber_symptoms.c.subscriber_id == row["id"]
                )
            ).scalars()
        )


@sqlite_only("a form's fields")
def test_preference_centre_form(cli: CLI, tmp_path: Path) -> None:
    _two_people(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        path = link_in(messages(ctx, "ann@example.com")[-1], "preferences")
        page = client.get(path)
        assert page.status_code == 200
        html = page.text
        assert html.count("<legend>") == 7  # five symptom groups, the pause and a new episode
        assert "red_flag" not in html  # warning signs are not edited here
        assert 'value="sciatica" id="symptom-sciatica" checked' in html
        assert 'value="neck" id="symptom-neck" aria' in html  # not ticked
        for weeks in (2, 4, 8):
            assert f'name="pause" value="{weeks}"' in html
        assert 'value="leave"' in html
        # GET changed nothing
        assert _codes(ctx, "ann@example.com") == {"lower_back", "sciatica"}

        saved = client.post(path, data={"symptoms": ["neck", "desk_posture"], "pause": "0"})
        assert saved.status_code == 200 and "saved" in saved.text
        assert _codes(ctx, "ann@example.com") == {"neck", "desk_posture"}
        assert _codes(ctx, "bob@example.com") == {"neck", "desk_posture"}  # untouched anyway
        assert client.post(path, data={"symptoms": ["sore_toe"]}).status_code == 422
        assert client.post(path, data={"pause": "3"}).status_code == 422
        assert _codes(ctx, "ann@example.com") == {"neck", "desk_posture"}


def test_pause_holds_campaign_email_until_it_ends(cli: CLI, tmp_path: Path) -> None:
    _two_people(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        path = link_in(messages(ctx, "ann@example.com")[-1], "preferences")
        before = datetime.now(UTC)
        reply = client.post(path, data={"symptoms": ["lower_back", "sciatica"], "pause": "4"})
        assert reply.status_code == 200
        row = person(ctx, "ann@example.com")
        assert row is not None
        until = row["paused_until"]
        assert isinstance(until, datetime)
        assert (
            before + timedelta(weeks=4) - timedelta(minutes=1)
            <= until
            <= datetime.now(UTC) + timedelta(weeks=4)
        )
        assert "Keep my pause" in client.get(path).text
        during = until - timedelta(days=1)
        during = during.replace(hour=12)
        cli("tick", "--now", iso(during))
        assert len(messages(ctx, "ann@example.com")) == 1
        assert len(messages(ctx, "bob@example.com")) == 2
        after = (until + timedelta(days=1)).replace(hour=12)
        cli("tick", "--now", iso(after))
        assert len(messages(ctx, "ann@example.com")) == 2
        # resume clears the pause
        assert client.post(path, data={"symptoms": ["lower_back"], "pause": "0"}).status_code == 200
        assert person(ctx, "ann@example.com")["paused_until"] is None  # type: ignore[index]


def test_leave_all_from_preferences(cli: CLI, tmp_path: Path) -> None:
    _two_people(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        path = link_in(messages(ctx, "ann@example.com")[-1], "preferences")
        reply = client.post(path, data={"action": "leave"})
        assert reply.status_code == 200 and "unsubscribed" in reply.text
        assert _status(ctx, "ann@example.com") == "unsubscribed"
        assert "You are unsubscribed" in client.get(path).text
        assert cli("tick", "--now", iso(future_noon(30)), "--json").json()["sent"] == 1  # Bob only
        assert len(messages(ctx, "ann@example.com")) == 1


def test_red_flags_survive_a_preferences_save(cli: CLI, tmp_path: Path) -> None:
    path_csv = write_csv(
        tmp_path / "rf.csv",
        ["rf@example.com,Rae,lower_back;red_flag_leg_weakness,Europe/London,yes,,"],
    )
    assert cli("subscribers", "import", str(path_csv)).code == 0
    with app_for(cli) as (client, ctx):
        row = person(ctx, "rf@example.com")
        assert row is not None
        token = ctx.tokens.make("preferences", str(row["public_id"]))
        assert (
            client.post(
                f"/preferences/{token}", data={"symptoms": ["neck"], "pause": "0"}
            ).status_code
            == 200
        )
        assert _codes(ctx, "rf@example.com") == {"neck", "red_flag_leg_weakness"}
        with ctx.db.begin() as conn:
            assert (
                conn.execute(
                    select(subscribers.c.red_flag).where(subscribers.c.id == row["id"])
                ).scalar_one()
                is True
            )


def test_leave_one_series_keeps_the_subscription(cli: CLI, tmp_path: Path) -> None:
    _two_people(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        path = link_in(messages(ctx, "ann@example.com")[-1], "preferences")
        page = client.get(path).text
        assert 'value="leave-series:spasm-education"' in page
        assert "Understanding back and neck pain" in page
        # A series they are not in (or made up) is refused and changes nothing.
        assert client.post(path, data={"action": "leave-series:nope"}).status_code == 404
        reply = client.post(path, data={"action": "leave-series:spasm-education"})
        assert reply.status_code == 200
        assert "You left" in reply.text
        assert 'value="leave-series:spasm-education"' not in reply.text
        assert _status(ctx, "ann@example.com") == "confirmed"  # still subscribed, just not to it
        # Changing symptoms afterwards does not put her back into the series she left.
        client.post(path, data={"action": "save", "symptoms": ["neck"], "pause": "0"})
        assert cli("tick", "--now", iso(future_noon(30)), "--json").json()["sent"] == 1  # Bob only
        assert len(messages(ctx, "ann@example.com")) == 1


def _step_unsubscribes(cli: CLI) -> dict[str, int]:
    stats = cli("stats", "--json").json()
    assert stats["totals"]["unsubscribes"] == sum(
        s["unsubscribes"] for c in stats["campaigns"] for s in c["steps"]
    )
    return {
        f"{c['id']}/{s['step']}": s["unsubscribes"]
        for c in stats["campaigns"]
        for s in c["steps"]
        if s["unsubscribes"]
    }


def test_own_link_unsubscribes_count_in_stats_against_the_email_used(
    cli: CLI, tmp_path: Path
) -> None:
    _two_people(cli, tmp_path)
    assert _step_unsubscribes(cli) == {}
    with app_for(cli) as (client, ctx):
        ann_path = _unsubscribe_path(ctx, "ann@example.com")
        steps = {step for _c, step, _s in ledger(ctx)}
        assert len(steps) == 1  # both got the first step of the series
        first_step = steps.pop()
        # Ann uses the one-click header (RFC 8058); twice, as mail clients sometimes do.
        assert client.post(ann_path, data=ONE_CLICK).status_code == 200
        assert client.post(ann_path, data=ONE_CLICK).status_code == 200
        # Bob opens the footer link's page and presses its button (the same form post).
        bob_path = _unsubscribe_path(ctx, "bob@example.com")
        page = client.get(bob_path)
        assert f'action="{bob_path}"' in page.text
        assert client.post(bob_path, data=ONE_CLICK).status_code == 200
        assert "ann" not in ann_path.lower() and "example" not in ann_path
    counted = _step_unsubscribes(cli)
    assert counted == {f"spasm-education/{first_step}": 2}, counted


def test_preference_centre_unsubscribe_counts_and_old_links_still_work(
    cli: CLI, tmp_path: Path
) -> None:
    _two_people(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        prefs = link_in(messages(ctx, "ann@example.com")[-1], "preferences")
        assert client.post(prefs, data={"action": "leave"}).status_code == 200
        assert _status(ctx, "ann@example.com") == "unsubscribed"
        # A link from before links named their email still unsubscribes (counted nowhere).
        bob = person(ctx, "bob@example.com")
        assert bob is not None
        old = Tokens(ctx.signing_keys).make("unsubscribe", str(bob["public_id"]))
        assert client.post(f"/unsubscribe/{old}", data=ONE_CLICK).status_code == 200
        assert _status(ctx, "bob@example.com") == "unsubscribed"
    assert sum(_step_unsubscribes(cli).values()) == 1
