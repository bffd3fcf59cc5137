"""`clinicmail stats`: per campaign, step, variant and symptom group, with click-to-open and
check-in answers; a readable table; a matplotlib chart by week and step."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns.ledger import sends
from storage import Database
from subscribers import activity
from tests.support.cli import CLI, assert_one_line_error
from tests.support.engagement import MONDAY, deliver_events, send_ids, sg
from tests.support.times import iso

ROWS = [
    "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
    "bob@example.com,Bob,neck;desk_posture,Europe/London,yes,,",
    "cat@example.com,Cat,lower_back,Europe/London,yes,,",
    "dan@example.com,Dan,,Europe/London,yes,,",
]


@pytest.fixture
def figures(cli: CLI, tmp_path: Path, db_url: str) -> CLI:
    from tests.support.cli import write_csv

    csv = write_csv(tmp_path / "people.csv", ROWS)
    assert cli("subscribers", "import", str(csv)).code == 0
    assert cli("tick", "--now", iso(MONDAY), "--json").json()["sent"] == 4
    ids = send_ids(db_url)
    hour = MONDAY + timedelta(hours=1)
    deliver_events(
        db_url,
        [
            *(sg("delivered", e, MONDAY + timedelta(seconds=20), s) for e, s in ids.items()),
            sg("open", "ann@example.com", hour, ids["ann@example.com"]),
            sg("open", "ann@example.com", hour + timedelta(minutes=5), ids["ann@example.com"]),
            sg("click", "ann@example.com", hour, ids["ann@example.com"], url="https://x.example/a"),
            sg("open", "bob@example.com", hour, ids["bob@example.com"]),
            sg("open", "cat@example.com", hour, ids["cat@example.com"], sg_machine_open=True),
            sg("spamreport", "dan@example.com", hour, ids["dan@example.com"]),
        ],
        hour + timedelta(minutes=10),
    )
    db = Database(db_url)
    try:
        with db.begin() as conn:
            rows = conn.execute(
                select(sends.c.subscriber_id, sends.c.campaign_id, sends.c.step_id).where(
                    sends.c.kind == "campaign"
                )
            ).all()
            # check-in answers as the one-click links record them (engagement.checkins)
            for (sid, campaign, step), answer in zip(
                rows, ("better", "worse", "worse"), strict=False
            ):
                activity.record(
                    conn,
                    sid,
                    activity.CHECKIN,
                    hour,
                    campaign_id=campaign,
                    step_id=step,
                    value=answer,
                )
    finally:
        db.dispose()
    return cli


def test_json_keeps_the_contract_keys_and_adds_groups_and_checkins(figures: CLI) -> None:
    run = figures("stats", "--json")
    assert run.code == 0, run.err
    data = run.json()
    totals = data["totals"]
    assert {
        k: totals[k]
        for k in ("sent", "delivered", "opens", "unique_opens", "clicks", "unique_clicks")
    } == {"sent": 4, "delivered": 4, "opens": 3, "unique_opens": 2, "clicks": 1, "unique_clicks": 1}
    assert (totals["bounces"], totals["spam_reports"], totals["unsubscribes"]) == (0, 1, 0)
    assert totals["click_to_open"] == 0.5
    assert (totals["checkin_better"], totals["checkin_same"], totals["checkin_worse"]) == (1, 0, 2)

    (campaign,) = data["campaigns"]
    step = campaign["steps"][0]
    assert step["sent"] == 4 and step["checkin_worse"] == 2
    assert sum(v["checkin_better"] + v["checkin_worse"] for v in step["variants"]) == 3
    assert all(s["sent"] == 0 for s in campaign["steps"][1:])

    groups = {g["group"]: g for g in data["symptom_groups"]}
    assert [g["group"] for g in data["symptom_groups"]][:3] == ["where", "pattern", "spreading"]
    # "where": Ann and Cat (lower_back) and Bob (neck); Dan stated nothing
    assert groups["where"]["sent"] == 3
    assert groups["where"]["unique_opens"] == 2  # Cat's open was Apple's proxy
    codes = {c["code"]: c for c in groups["where"]["codes"]}
    assert (codes["lower_back"]["sent"], codes["neck"]["sent"], codes["mid_back"]["sent"]) == (
        2,
        1,
        0,
    )
    assert codes["lower_back"]["unique_clicks"] == 1 and codes["lower_back"]["click_to_open"] == 1.0
    assert groups["spreading"]["sent"] == 1 and groups["spreading"]["clicks"] == 1
    assert groups["context"]["sent"] == 1  # desk_posture
    assert groups["red_flags"]["sent"] == 0
    assert campaign["symptom_groups"][0]["sent"] == 3  # the same, per campaign
    # aggregated counts only: no person appears anywhere in the figures
    assert "@" not in run.out and "Ann" not in run.out
    assert data["list_health"]["campaigns_paused"] is False


def test_table_is_readable(figures: CLI) -> None:
    run = figures("stats")
    assert run.code == 0, run.err
    for text in (
        "clinicmail engagement",
        "unique opens",
        "click/open",
        "worse",
        "by symptom group",
    ):
        assert text in run.out
    assert "lower_back" in run.out and "50.0%" in run.out
    assert "campaign email running" in run.out


def test_chart_is_drawn(figures: CLI, tmp_path: Path) -> None:
    target = tmp_path / "engagement.png"
    run = figures("stats", "--chart", str(target))
    assert run.code == 0, run.err
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "1 step lines" in run.out


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing-folder/chart.png", "does not exist"),
        ("chart.txt", "must end in"),
        (".", "directory"),
    ],
)
def test_chart_path_errors_are_one_line(
    sqlite_cli: CLI, tmp_path: Path, name: str, message: str
) -> None:
    target = tmp_path / name if name != "." else tmp_path
    if name == ".":
        target = tmp_path / "adir.png"
        target.mkdir()
    run = sqlite_cli("stats", "--chart", str(target))
    assert_one_line_error(run, message)


def test_chart_to_an_unwritable_place_is_one_line(sqlite_cli: CLI) -> None:
    run = sqlite_cli("stats", "--chart", "/proc/clinicmail-chart.png")
    assert run.code == 1
    assert "cannot write the chart" in run.err and run.err.count("\n") == 1
