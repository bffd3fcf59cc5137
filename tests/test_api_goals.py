"""Goals: ``POST /api/v1/events`` with ``booked`` ends the bundled series' booking steps for
that person from the next tick, while everyone else carries on."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from campaigns import ledger
from campaigns.goals import reached_among
from campaigns.ledger import CAMPAIGN, sends
from campaigns.tables import enrollments
from subscribers.tables import subscribers
from tests.support.api import assert_problem, bearer, new_key
from tests.support.app import app_for, context_for
from tests.support.cli import CLI
from tests.support.delivery import import_people
from tests.support.times import iso

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def campaign_steps(cli: CLI, email: str) -> list[str]:
    with context_for(cli) as ctx, ctx.db.begin() as conn:
        return list(
            conn.execute(
                select(sends.c.step_id)
                .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
                .where(subscribers.c.email_key == email, sends.c.kind == CAMPAIGN)
                .order_by(sends.c.id)
            ).scalars()
        )


def test_booked_through_the_api_stops_the_booking_steps_from_the_next_tick(
    cli: CLI, tmp_path: Path
) -> None:
    import_people(
        cli,
        tmp_path,
        [
            "ann@example.com,Ann,lower_back,Europe/London,yes,,",
            "bob@example.com,Bob,lower_back,Europe/London,yes,,",
        ],
    )
    assert cli("tick", "--now", iso(MONDAY_NOON)).code == 0
    assert len(campaign_steps(cli, "ann@example.com")) == 1
    assert len(campaign_steps(cli, "bob@example.com")) == 1
    key = new_key(cli, "booking", "events:write")
    with app_for(cli) as (client, ctx):
        booking = {
            "email": "ann@example.com",
            "type": "booked",
            "occurred_at": iso(MONDAY_NOON + timedelta(days=1)),
        }
        answer = client.post("/api/v1/events", json=booking, headers=bearer(key))
        assert answer.status_code == 202, answer.text
        # Someone nobody holds: accepted alike, nothing stored.
        nobody = client.post(
            "/api/v1/events",
            json={"email": "zed@example.com", "type": "booked"},
            headers=bearer(key),
        )
        assert nobody.status_code == 202
        assert_problem(
            client.post("/api/v1/events", json={"type": "booked"}, headers=bearer(key)), 422
        )
        with ctx.db.begin() as conn:
            ann = conn.execute(
                select(subscribers.c.id).where(subscribers.c.email_key == "ann@example.com")
            ).scalar_one()
            assert reached_among(conn, [ann]) == {ann: {"booked"}}
    # The event is part of everything held about her (the CLI's export and the API's).
    exported = cli("subscribers", "export", "ann@example.com")
    assert exported.code == 0, exported.err
    (event,) = exported.json()["goal_events"]
    assert (event["type"], event["occurred_at"]) == (
        "booked",
        booking["occurred_at"][:-1] + "+00:00",
    )
    for week in (1, 2):
        run = cli("tick", "--now", iso(MONDAY_NOON + week * WEEK), "--json")
        assert run.code == 0, run.err
    assert len(campaign_steps(cli, "ann@example.com")) == 1  # nothing after the booking
    assert len(campaign_steps(cli, "bob@example.com")) == 3  # the series carries on for Bob
    # Conversion in people: Ann booked after week 1's email; Bob has not booked.
    (goal,) = cli("stats", "--json").json()["goals"]
    assert goal["goal"] == "booked" and goal["converted"] == 1
    first, second = goal["steps"][:2]
    assert (first["people"], first["converted"], first["rate"]) == (2, 1, 0.5)
    assert (second["people"], second["converted"]) == (1, 0)


def test_a_custom_event_is_recorded_but_only_the_goal_stops_the_series(
    cli: CLI, tmp_path: Path
) -> None:
    import_people(cli, tmp_path, ["cy@example.com,Cy,neck,Europe/London,yes,,"])
    assert cli("tick", "--now", iso(MONDAY_NOON)).code == 0
    key = new_key(cli, "pms", "events:write", "subscribers:read")
    with app_for(cli) as (client, _ctx):
        pid = client.post(
            "/api/v1/subscribers/lookup", json={"email": "cy@example.com"}, headers=bearer(key)
        ).json()["id"]
        answer = client.post(
            "/api/v1/events",
            json={"subscriber_id": pid, "type": "newsletter-read"},
            headers=bearer(key),
        )
        assert answer.status_code == 202
        person = client.get(f"/api/v1/subscribers/{pid}", headers=bearer(key)).json()
        assert person["goals"] == ["newsletter-read"]
    assert cli("tick", "--now", iso(MONDAY_NOON + WEEK)).code == 0
    assert len(campaign_steps(cli, "cy@example.com")) == 2


def test_a_goal_moves_the_person_to_the_follow_up_series(cli: CLI, tmp_path: Path) -> None:
    library = Path(__file__).resolve().parents[1] / "campaigns" / "library" / "spasm-education"
    root = tmp_path / "lib"
    shutil.copytree(library, root / "spasm-education")
    shutil.copytree(library, root / "after-care")
    first = root / "spasm-education" / "campaign.yaml"
    first.write_text(
        first.read_text().replace("goal: booked", "goal: booked\ngoal_follow_up: after-care")
    )
    follow = root / "after-care" / "campaign.yaml"
    follow.write_text(
        follow.read_text()
        .replace("id: spasm-education", "id: after-care")
        .replace("goal: booked", "")
        .replace("not: {in_group: red_flags}", "in_group: red_flags")  # nobody enters by rule
    )
    cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(root))
    import_people(cli, tmp_path, ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    assert cli("tick", "--now", iso(MONDAY_NOON)).code == 0
    key = new_key(cli, "booking", "events:write")
    with app_for(cli) as (client, ctx):
        with ctx.db.begin() as conn:  # week 2 planned and waiting (say, for a retry)
            ann = conn.execute(select(subscribers.c.id)).scalar_one()
            ledger.plan(
                conn,
                [
                    ledger.new_row(
                        subscriber_id=ann,
                        campaign_id="spasm-education",
                        step_id="the-first-few-days",
                        variant_id="default",
                        kind=CAMPAIGN,
                        now=MONDAY_NOON,
                    )
                ],
            )
        answer = client.post(
            "/api/v1/events",
            json={"email": "ann@example.com", "type": "booked"},
            headers=bearer(key),
        )
        assert answer.status_code == 202
        with ctx.db.begin() as conn:
            waiting = conn.execute(
                select(sends.c.status).where(sends.c.step_id == "the-first-few-days")
            ).scalar_one()
            states = dict(
                conn.execute(select(enrollments.c.campaign_id, enrollments.c.status)).all()
            )
    assert waiting == "cancelled"
    assert states == {"spasm-education": "completed", "after-care": "active"}
    assert cli("tick", "--now", iso(MONDAY_NOON + WEEK)).code == 0
    with context_for(cli) as ctx, ctx.db.begin() as conn:
        sent = conn.execute(
            select(sends.c.campaign_id, sends.c.step_id)
            .where(sends.c.kind == CAMPAIGN, sends.c.status == "sent")
            .order_by(sends.c.id)
        ).all()
    assert [tuple(r) for r in sent] == [
        ("spasm-education", "why-your-back-locks-up"),
        ("after-care", "why-your-back-locks-up"),
    ]
