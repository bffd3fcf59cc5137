"""Goal conversion in people, not events: who reached the goal (``booked``) within the
campaign's window of which email, per step and per symptom group, the same figures in
``GET /api/v1/stats``, ``clinicmail stats`` (JSON and tables) and the console's dashboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from campaigns.ledger import CAMPAIGN, sends
from subscribers.tables import subscribers
from tests.support.api import bearer, new_key
from tests.support.app import app_for, context_for
from tests.support.cli import CLI
from tests.support.console import Console
from tests.support.delivery import import_people
from tests.support.times import iso

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
PEOPLE = [
    "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
    "bob@example.com,Bob,neck;desk_posture,Europe/London,yes,,",
    "cy@example.com,Cy,lower_back,Europe/London,yes,,",
]


def second_step(cli: CLI, email: str) -> str:
    with context_for(cli) as ctx, ctx.db.begin() as conn:
        steps = conn.execute(
            select(sends.c.step_id)
            .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
            .where(subscribers.c.email_key == email, sends.c.kind == CAMPAIGN)
            .order_by(sends.c.id)
        ).scalars()
        return str(list(steps)[1])


def two_weeks_then_bookings(cli: CLI, tmp_path: Path) -> str:
    """Three people get two weeks of the series; then Ann books twice (2 and 5 days after her
    second email), Bob books 31 days after his second email (outside the 30-day window), Cy
    "booked" before any email. Returns the step Ann converted at."""
    import_people(cli, tmp_path, PEOPLE)
    for week in (0, 1):
        run = cli("tick", "--now", iso(MONDAY_NOON + week * WEEK), "--json")
        assert run.code == 0 and run.json()["sent"] == 3, run.out
    key = new_key(cli, "booking", "events:write")
    second = MONDAY_NOON + WEEK
    bookings = [
        ("ann@example.com", second + timedelta(days=2)),
        ("ann@example.com", second + timedelta(days=5)),
        ("bob@example.com", second + timedelta(days=31)),
        ("cy@example.com", MONDAY_NOON - timedelta(days=1)),
    ]
    with app_for(cli) as (client, _ctx):
        for email, at in bookings:
            answer = client.post(
                "/api/v1/events",
                json={"email": email, "type": "booked", "occurred_at": iso(at)},
                headers=bearer(key),
            )
            assert answer.status_code == 202, answer.text
    return second_step(cli, "ann@example.com")


def check_figures(goal: dict[str, Any], ann_step: str) -> None:
    assert goal["goal"] == "booked" and goal["window_days"] == 30
    # Ann counts once (two bookings); Bob booked too late; Cy booked before any email.
    assert (goal["people"], goal["converted"], goal["rate"]) == (3, 1, round(1 / 3, 4))
    by_step = {s["step"]: s for s in goal["steps"]}
    assert by_step[ann_step]["converted"] == 1 and by_step[ann_step]["people"] == 3
    assert sum(s["converted"] for s in goal["steps"]) == 1
    groups = {g["group"]: g for g in goal["symptom_groups"]}
    assert "red_flags" not in groups
    assert (groups["where"]["people"], groups["where"]["converted"]) == (3, 1)
    assert (groups["spreading"]["people"], groups["spreading"]["converted"]) == (1, 1)
    assert (groups["context"]["people"], groups["context"]["converted"]) == (1, 0)
    assert groups["pattern"]["people"] == 0
    codes = {c["code"]: c for g in goal["symptom_groups"] for c in g["codes"]}
    assert (codes["lower_back"]["people"], codes["lower_back"]["converted"]) == (2, 1)
    assert codes["lower_back"]["rate"] == 0.5
    assert (codes["neck"]["people"], codes["neck"]["converted"]) == (1, 0)
    assert (codes["sciatica"]["people"], codes["sciatica"]["converted"]) == (1, 1)


def test_conversion_per_step_and_symptom_group_in_people(cli: CLI, tmp_path: Path) -> None:
    ann_step = two_weeks_then_bookings(cli, tmp_path)
    (goal,) = cli("stats", "--json").json()["goals"]
    check_figures(goal, ann_step)

    key = new_key(cli, "reports", "stats:read")
    with app_for(cli) as (client, _ctx):
        (api_goal,) = client.get("/api/v1/stats", headers=bearer(key)).json()["goals"]
    assert api_goal == goal

    table = cli("stats")
    assert table.code == 0, table.err
    text = table.out
    assert "booked within 30 days of an email" in text
    for label in ("Where", "Spreading", "lower_back", "sciatica", ann_step):
        assert label in text, label
    # Aggregates only: no address or name anywhere in the figures.
    for private in ("ann@", "bob@", "Ann", "Bob"):
        assert private not in text and private not in str(goal)


def test_console_dashboard_shows_the_conversion(console: Console, tmp_path: Path) -> None:
    cli = console.cli
    ann_step = two_weeks_then_bookings(cli, tmp_path)
    client, _ = console.signed_in("marketing")
    page = client.get("/admin")
    assert page.status_code == 200
    found = re.search(r'<table id="table-goal-spasm-education".*?</table>', page.text, re.S)
    assert found, page.text[-3000:]
    table = found.group(0)

    def cells(attr: str) -> tuple[str, str]:
        row = re.search(rf"<tr {attr}>(.*?)</tr>", table, re.S)
        assert row, attr
        people = re.search(r'data-key="people">(?:<strong>)?(\d+)', row.group(1))
        won = re.search(r'data-key="converted">(?:<strong>)?(\d+)', row.group(1))
        assert people and won
        return people.group(1), won.group(1)

    assert cells('data-row="all"') == ("3", "1")
    assert cells(f'data-step="{ann_step}"') == ("3", "1")
    assert cells('data-code="lower_back"') == ("2", "1")
    assert cells('data-group="spreading"') == ("1", "1")
    assert 'data-group="pattern"' not in table  # nobody in it: left out
