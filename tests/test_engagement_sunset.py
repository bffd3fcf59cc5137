"""The sunset policy: people with enough email but no human engagement for
CLINICMAIL_SUNSET_WEEKS get one "still want these?" email and are paused until they press
"keep me" (a signed link with its own salt); engagement scores rank people the same way."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns.ledger import sends
from engagement import scores
from engagement.sunset import KEPT, PAUSED
from engagement.tables import sunset
from storage import Database
from subscribers.tables import subscribers
from tests.support.app import app_for, link_in
from tests.support.cli import CLI, assert_one_line_error
from tests.support.engagement import MONDAY, deliver_events, sg
from tests.support.outbox import messages, outbox_messages
from tests.support.times import iso

WEEK = timedelta(days=7)
# Five weekly emails (weeks 0-4); the policy runs the day after the fifth.
RUN_AT = MONDAY + 4 * WEEK + timedelta(days=1)


def _weeks_of_email(cli: CLI, tmp_path: Path, rows: list[str], weeks: int = 5) -> None:
    from tests.support.cli import write_csv

    csv = write_csv(tmp_path / "people.csv", rows)
    assert cli("subscribers", "import", str(csv)).code == 0
    for w in range(weeks):
        tick = cli("tick", "--now", iso(MONDAY + w * WEEK), "--json")
        assert tick.code == 0, tick.err


def _send_id(db_url: str, email: str, step_number: int) -> str:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            rows = conn.execute(
                select(sends.c.send_id)
                .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
                .where(subscribers.c.email_key == email, sends.c.kind == "campaign")
                .order_by(sends.c.id)
            ).all()
    finally:
        db.dispose()
    return str(rows[step_number - 1][0])


def _states(db_url: str) -> dict[str, tuple[str, int]]:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            return {
                email: (state, cycles)
                for email, state, cycles in conn.execute(
                    select(subscribers.c.email, sunset.c.state, sunset.c.cycles).join(
                        subscribers, subscribers.c.id == sunset.c.subscriber_id
                    )
                )
            }
    finally:
        db.dispose()


@pytest.mark.parametrize("value", ["abc", "-1", "2.5", "9999"])
def test_sunset_weeks_is_validated_in_one_line(sqlite_cli: CLI, value: str) -> None:
    sqlite_cli.env("CLINICMAIL_SUNSET_WEEKS", value)
    run = sqlite_cli("health", "sunset", "--dry-run")
    assert_one_line_error(run, "CLINICMAIL_SUNSET_WEEKS")


def test_zero_turns_the_policy_off(sqlite_cli: CLI) -> None:
    sqlite_cli.env("CLINICMAIL_SUNSET_WEEKS", "0")
    run = sqlite_cli("health", "sunset")
    assert run.code == 0 and "off" in run.out


def test_dormant_people_are_asked_once_paused_and_kept_by_one_click(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    cli.env("CLINICMAIL_SUNSET_WEEKS", "4")
    rows = [
        "quiet@example.com,Quinn,lower_back,Europe/London,yes,,",
        "clicker@example.com,Cleo,lower_back,Europe/London,yes,,",
        "proxy@example.com,Pat,lower_back,Europe/London,yes,,",
        "oldclick@example.com,Olly,lower_back,Europe/London,yes,,",
    ]
    _weeks_of_email(cli, tmp_path, rows)
    # Cleo clicked in week 3; Pat's only "opens" are Apple's proxy; Olly clicked in week 0,
    # which is older than the four-week window.
    events = [
        sg(
            "click",
            "clicker@example.com",
            MONDAY + 3 * WEEK + timedelta(hours=2),
            _send_id(db_url, "clicker@example.com", 4),
            url="https://clinic.example/x",
        ),
        *(
            sg(
                "open",
                "proxy@example.com",
                MONDAY + w * WEEK + timedelta(minutes=1),
                _send_id(db_url, "proxy@example.com", w + 1),
                sg_machine_open=True,
            )
            for w in range(5)
        ),
        sg(
            "click",
            "oldclick@example.com",
            MONDAY + timedelta(hours=3),
            _send_id(db_url, "oldclick@example.com", 1),
            url="https://clinic.example/x",
        ),
    ]
    deliver_events(db_url, events, RUN_AT - timedelta(hours=1))

    dry = cli("health", "sunset", "--dry-run", "--now", iso(RUN_AT), "--json")
    assert dry.code == 0, dry.err
    assert dry.json()["asked"] == 3 and dry.json()["paused"] == 3
    assert _states(db_url) == {}  # a dry run changes nothing
    text = cli("health", "sunset", "--dry-run", "--now", iso(RUN_AT))
    assert "would ask 3 dormant subscribers" in text.out

    # Scores agree: Cleo (recent click) ranks above everyone who is about to be asked.
    db = Database(db_url)
    try:
        with db.begin() as conn:
            ids = dict(conn.execute(select(subscribers.c.email, subscribers.c.id)).all())
            ranked = scores.scores(conn, RUN_AT, weeks=4)
    finally:
        db.dispose()
    assert ranked[ids["clicker@example.com"]].clicked == 1
    assert ranked[ids["clicker@example.com"]].score > 0
    assert {ranked[ids[e]].score for e in ("quiet@example.com", "proxy@example.com")} == {0}
    assert scores.buckets(ranked.values())["inactive"] == 3

    run = cli("health", "sunset", "--now", iso(RUN_AT), "--json")
    assert run.code == 0, run.err
    assert run.json()["asked"] == 3
    assert _states(db_url) == {
        "quiet@example.com": (PAUSED, 1),
        "proxy@example.com": (PAUSED, 1),
        "oldclick@example.com": (PAUSED, 1),
    }
    again = cli("health", "sunset", "--now", iso(RUN_AT + timedelta(hours=1)), "--json")
    assert again.json()["asked"] == 0  # nobody is asked twice

    # The re-engagement email goes at the next tick; next week only Cleo gets campaign email.
    before = len(outbox_messages(db_url))
    tick = cli("tick", "--now", iso(RUN_AT + timedelta(hours=1)), "--json")
    assert tick.code == 0, tick.err
    asked = outbox_messages(db_url)[before:]
    assert sorted(m[0] for m in asked) == [
        "oldclick@example.com",
        "proxy@example.com",
        "quiet@example.com",
    ]
    assert all("Still want these emails" in m[1] for m in asked)
    # It reads naturally whether or not a first name is known (never "…, there?").
    assert not any("there?" in m[1] for m in asked)
    before = len(outbox_messages(db_url))
    week5 = cli("tick", "--now", iso(MONDAY + 5 * WEEK), "--json")
    assert [m[0] for m in outbox_messages(db_url)[before:]] == ["clicker@example.com"], week5.out

    with app_for(cli) as (client, ctx):
        (mail,) = messages(ctx, "quiet@example.com")[-1:]
        keep = link_in(mail, "keep")
        assert "quiet" not in keep and "@" not in keep  # an opaque token
        page = client.get(keep)
        assert page.status_code == 200 and "<form" in page.text
        assert _states(db_url)["quiet@example.com"] == (PAUSED, 1)  # GET changes nothing
        assert client.get(keep.replace("/keep/", "/unsubscribe/")).status_code == 404  # own salt
        assert client.post(keep[:-3] + "xyz").status_code == 404
        done = client.post(keep)
        assert done.status_code == 200 and "keep getting" in done.text
    assert _states(db_url)["quiet@example.com"] == (KEPT, 1)

    # Quinn is back (at the next tick after the pause re-check); Pat and Olly stay paused.
    before = len(outbox_messages(db_url))
    cli("tick", "--now", iso(MONDAY + 5 * WEEK + timedelta(hours=7)), "--json")
    assert [m[0] for m in outbox_messages(db_url)[before:]] == ["quiet@example.com"]

    # A later human click re-activates a paused person too (Olly clicks an old email).
    olly = MONDAY + 5 * WEEK + timedelta(hours=8)
    deliver_events(
        db_url,
        [
            sg(
                "click",
                "oldclick@example.com",
                olly,
                _send_id(db_url, "oldclick@example.com", 2),
                9,
                url="https://clinic.example/y",
            )
        ],
        olly,
    )
    status = cli("health", "sunset", "--now", iso(olly + timedelta(hours=1)), "--json")
    assert status.json()["reactivated"] == 1
    assert _states(db_url)["oldclick@example.com"][0] == KEPT
    assert _states(db_url)["proxy@example.com"] == (PAUSED, 1)
