"""Re-entry for a new episode: a person who finished or left a series starts it again from
week 1 when they report a new episode of pain (the API, or the preference centre), once the
campaign's ``reentry_after_days`` passed since it ended; the ledger's one-email-per-step key
(now per episode) does not block them, the weekly cap still holds, and their history shows
both episodes. Real ticks with the outbox transport; the API's clock is moved with
time-machine to match the ticks' ``--now``."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
from sqlalchemy import select

from campaigns.ledger import CAMPAIGN, sends
from campaigns.tables import enrollments
from subscribers.tables import subscribers
from tests.support.api import assert_problem, bearer, new_key
from tests.support.app import app_for, context_for, link_in
from tests.support.cli import CLI
from tests.support.delivery import import_people
from tests.support.outbox import messages
from tests.support.times import iso
from transports.tables import outbox

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
SERIES = "spasm-education"
WEEK_ONE = "why-your-back-locks-up"
LIBRARY = Path(__file__).resolve().parents[1] / "campaigns" / "library" / SERIES


def library_with_gap(cli: CLI, tmp_path: Path, days: int) -> None:
    """The bundled series with a shorter minimum gap before re-entry (90 days bundled)."""
    root = tmp_path / "lib"
    shutil.copytree(LIBRARY, root / SERIES)
    meta = root / SERIES / "campaign.yaml"
    text = meta.read_text()
    assert "reentry_after_days: 90" in text
    meta.write_text(text.replace("reentry_after_days: 90", f"reentry_after_days: {days}"))
    cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(root))


def ledger_of(cli: CLI, email: str) -> list[tuple[str, int, str]]:
    """The person's campaign emails: (step, episode, status), oldest first."""
    with context_for(cli) as ctx, ctx.db.begin() as conn:
        rows = conn.execute(
            select(sends.c.step_id, sends.c.episode, sends.c.status)
            .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
            .where(subscribers.c.email_key == email, sends.c.kind == CAMPAIGN)
            .order_by(sends.c.id)
        ).all()
    return [(r[0], int(r[1]), r[2]) for r in rows]


def enrollment_of(cli: CLI, email: str) -> tuple[str, int, datetime]:
    with context_for(cli) as ctx, ctx.db.begin() as conn:
        row = conn.execute(
            select(enrollments.c.status, enrollments.c.episode, enrollments.c.updated_at)
            .join(subscribers, subscribers.c.id == enrollments.c.subscriber_id)
            .where(subscribers.c.email_key == email, enrollments.c.campaign_id == SERIES)
        ).one()
    return row[0], int(row[1]), row[2]


def outbox_count(cli: CLI, email: str) -> int:
    with context_for(cli) as ctx, ctx.db.begin() as conn:
        return len(conn.execute(select(outbox.c.id).where(outbox.c.recipient == email)).all())


def tick(cli: CLI, at: datetime) -> dict[str, int]:
    run = cli("tick", "--now", iso(at), "--json")
    assert run.code == 0, run.err
    result: dict[str, int] = run.json()
    return result


def test_a_person_who_finished_reenters_after_the_gap_and_gets_week_one_again(
    cli: CLI, tmp_path: Path
) -> None:
    library_with_gap(cli, tmp_path, 3)
    import_people(cli, tmp_path, ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    at = MONDAY_NOON
    for _ in range(15):  # one email a week until the series is done
        tick(cli, at)
        if enrollment_of(cli, "ann@example.com")[0] == "completed":
            break
        at += WEEK
    status, episode, ended = enrollment_of(cli, "ann@example.com")
    assert (status, episode) == ("completed", 1)
    first_time = ledger_of(cli, "ann@example.com")
    assert first_time[0] == (WEEK_ONE, 1, "sent") and len(first_time) >= 8
    assert all(e == 1 and s == "sent" for _, e, s in first_time)
    last_accepted = at
    mails_before = outbox_count(cli, "ann@example.com")

    key = new_key(cli, "pms", "subscribers:read", "subscribers:write")
    with app_for(cli) as (client, _ctx):
        pid = client.post(
            "/api/v1/subscribers/lookup", json={"email": "ann@example.com"}, headers=bearer(key)
        ).json()["id"]
        # A day after the series ended: too soon (the campaign asks for 3 days).
        with time_machine.travel(ended + timedelta(days=1), tick=False):
            early = client.post(f"/api/v1/subscribers/{pid}/episodes", json={}, headers=bearer(key))
        assert early.status_code == 200, early.text
        body = early.json()
        assert body["started"] == []
        assert body["not_yet"] == [
            {"campaign_id": SERIES, "earliest_at": iso(ended + timedelta(days=3))}
        ]
    assert tick(cli, ended + timedelta(days=1))["sent"] == 0
    assert enrollment_of(cli, "ann@example.com")[:2] == ("completed", 1)

    # Four days after: the new episode starts the series again, with this episode's symptoms.
    reported = ended + timedelta(days=4)
    with app_for(cli) as (client, _ctx):
        with time_machine.travel(reported, tick=False):
            answer = client.post(
                f"/api/v1/subscribers/{pid}/episodes",
                json={"symptoms": ["lower_back", "sciatica"]},
                headers={**bearer(key), "Idempotency-Key": "ep-2"},
            )
            replay = client.post(
                f"/api/v1/subscribers/{pid}/episodes",
                json={"symptoms": ["lower_back", "sciatica"]},
                headers={**bearer(key), "Idempotency-Key": "ep-2"},
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["started"] == [SERIES] and answer.json()["not_yet"] == []
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.json() == answer.json()
        person = answer.json()["subscriber"]
        assert person["symptoms"] == ["lower_back", "sciatica"]
        assert person["series"] == [SERIES]
    assert enrollment_of(cli, "ann@example.com")[:2] == ("active", 2)

    # The weekly cap holds: her last email was accepted four days ago, so nothing yet.
    assert tick(cli, reported)["sent"] == 0
    assert outbox_count(cli, "ann@example.com") == mails_before
    # A week after her last email: week 1 again, as episode 2, through the outbox.
    again = tick(cli, last_accepted + WEEK + timedelta(hours=1))
    assert again["sent"] == 1
    assert ledger_of(cli, "ann@example.com")[len(first_time) :] == [(WEEK_ONE, 2, "sent")]
    assert outbox_count(cli, "ann@example.com") == mails_before + 1
    # Running the same tick again sends nothing more.
    assert tick(cli, last_accepted + WEEK + timedelta(hours=1))["sent"] == 0

    # Her history (API and export) shows both episodes.
    with app_for(cli) as (client, _ctx):
        person = client.get(f"/api/v1/subscribers/{pid}", headers=bearer(key)).json()
        episodes = [
            (e["campaign_id"], e["episode"], e["status"], e["emails"][:1])
            for e in person["episodes"]
        ]
        assert episodes == [(SERIES, 1, "ended", [WEEK_ONE]), (SERIES, 2, "active", [WEEK_ONE])]
        assert person["episodes"][0]["emails"] == [s for s, _, _ in first_time]
        exported = client.get(f"/api/v1/subscribers/{pid}/export", headers=bearer(key)).json()
    assert [e["episode"] for e in exported["episodes"]] == [1, 2]
    assert {s["episode"] for s in exported["sends"] if s["kind"] == CAMPAIGN} == {1, 2}


def test_a_person_who_left_reenters_through_the_preference_centre(cli: CLI, tmp_path: Path) -> None:
    library_with_gap(cli, tmp_path, 0)
    import_people(cli, tmp_path, ["cy@example.com,Cy,neck,Europe/London,yes,,"])
    assert tick(cli, MONDAY_NOON)["sent"] == 1
    with app_for(cli) as (client, ctx):
        (first,) = messages(ctx, "cy@example.com")
        prefs = link_in(first, "preferences")
        with time_machine.travel(MONDAY_NOON + timedelta(days=1), tick=False):
            page = client.get(prefs)
            assert "Has your pain come back?" in page.text
            left = client.post(prefs, data={"action": f"leave-series:{SERIES}"})
            assert left.status_code == 200
    assert enrollment_of(cli, "cy@example.com")[:2] == ("left", 1)
    assert tick(cli, MONDAY_NOON + WEEK)["sent"] == 0  # left: nothing more

    # Saving choices without ticking "new episode" restarts nothing.
    with (
        app_for(cli) as (client, _ctx),
        time_machine.travel(MONDAY_NOON + 2 * WEEK, tick=False),
    ):
        saved = client.post(prefs, data={"symptoms": ["neck", "desk_posture"], "pause": "0"})
        assert saved.status_code == 200
        assert enrollment_of(cli, "cy@example.com")[:2] == ("left", 1)
        back = client.post(
            prefs,
            data={"symptoms": ["neck", "arm_symptoms"], "pause": "0", "new_episode": "yes"},
        )
    assert back.status_code == 200
    assert "starts again from week 1" in back.text
    assert enrollment_of(cli, "cy@example.com")[:2] == ("active", 2)
    assert tick(cli, MONDAY_NOON + 2 * WEEK)["sent"] == 1
    assert ledger_of(cli, "cy@example.com") == [(WEEK_ONE, 1, "sent"), (WEEK_ONE, 2, "sent")]


def test_bundled_series_allows_reentry_after_90_days_and_refuses_the_unconfirmed(
    cli: CLI, tmp_path: Path
) -> None:
    import_people(cli, tmp_path, ["dee@example.com,Dee,neck,Europe/London,yes,,"])
    key = new_key(cli, "pms", "subscribers:read", "subscribers:write", "stats:read")
    with app_for(cli) as (client, ctx):
        (campaign,) = client.get("/api/v1/campaigns", headers=bearer(key)).json()["items"]
        assert campaign["reentry_after_days"] == 90
        assert campaign["goal_window_days"] == 30
        pid = client.post(
            "/api/v1/subscribers/lookup", json={"email": "dee@example.com"}, headers=bearer(key)
        ).json()["id"]
        # Still in the series: a new episode restarts nothing.
        running = client.post(f"/api/v1/subscribers/{pid}/episodes", json={}, headers=bearer(key))
        assert running.json()["started"] == [] and running.json()["not_yet"] == []
        assert_problem(
            client.post(
                f"/api/v1/subscribers/{pid}/episodes",
                json={"symptoms": ["not_a_code"]},
                headers=bearer(key),
            ),
            422,
        )
        assert_problem(
            client.post(f"/api/v1/subscribers/{'0' * 32}/episodes", json={}, headers=bearer(key)),
            404,
        )
        with ctx.db.begin() as conn:
            conn.execute(subscribers.update().values(status="unsubscribed"))
        assert_problem(
            client.post(f"/api/v1/subscribers/{pid}/episodes", json={}, headers=bearer(key)), 409
        )


def test_a_booking_in_an_earlier_episode_does_not_stop_the_new_one(
    cli: CLI, tmp_path: Path
) -> None:
    library_with_gap(cli, tmp_path, 0)
    import_people(cli, tmp_path, ["eve@example.com,Eve,lower_back,Europe/London,yes,,"])
    key = new_key(cli, "pms", "subscribers:read", "subscribers:write", "events:write")
    assert tick(cli, MONDAY_NOON)["sent"] == 1
    with app_for(cli) as (client, _ctx):
        booked = client.post(
            "/api/v1/events",
            json={
                "email": "eve@example.com",
                "type": "booked",
                "occurred_at": iso(MONDAY_NOON + timedelta(days=1)),
            },
            headers=bearer(key),
        )
        assert booked.status_code == 202
    # Every step of the bundled series invites a booking: after hers, the series is done.
    assert tick(cli, MONDAY_NOON + WEEK)["sent"] == 0
    assert enrollment_of(cli, "eve@example.com")[:2] == ("completed", 1)

    reported = MONDAY_NOON + 20 * WEEK
    with app_for(cli) as (client, _ctx):
        pid = client.post(
            "/api/v1/subscribers/lookup", json={"email": "eve@example.com"}, headers=bearer(key)
        ).json()["id"]
        with time_machine.travel(reported, tick=False):
            answer = client.post(
                f"/api/v1/subscribers/{pid}/episodes", json={}, headers=bearer(key)
            )
        assert answer.json()["started"] == [SERIES], answer.text
    # The old booking belongs to episode 1: week 1 goes again.
    assert tick(cli, reported)["sent"] == 1
    with app_for(cli) as (client, _ctx):
        again = client.post(
            "/api/v1/events",
            json={
                "subscriber_id": pid,
                "type": "booked",
                "occurred_at": iso(reported + timedelta(days=2)),
            },
            headers=bearer(key),
        )
        assert again.status_code == 202
        exported = client.get(f"/api/v1/subscribers/{pid}/export", headers=bearer(key))
        assert exported.status_code == 200, exported.text
        assert [e["type"] for e in exported.json()["goal_events"]] == ["booked", "booked"]
    # A booking in this episode stops this episode's booking steps.
    assert tick(cli, reported + WEEK)["sent"] == 0
    assert ledger_of(cli, "eve@example.com") == [(WEEK_ONE, 1, "sent"), (WEEK_ONE, 2, "sent")]
    assert enrollment_of(cli, "eve@example.com")[:2] == ("completed", 2)
