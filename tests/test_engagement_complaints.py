"""The daily spam-complaint rate: staff alerted once a day over 0.1%, campaign email paused over
0.3% (system email still goes) until `clinicmail health resume`; quiet days need real numbers."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.context import AppContext
from app.listhealth import housekeeping
from app.settings import load_settings
from campaigns.ledger import CAMPAIGN, SYSTEM, sends
from engagement import complaints
from engagement.complaints import ALERT, PAUSE, DayFigures
from storage import Database
from subscribers.tables import subscribers
from tests.support.app import app_for
from tests.support.cli import CLI
from tests.support.engagement import MONDAY, deliver_events, import_and_send, people, send_ids, sg
from tests.support.outbox import outbox_messages
from tests.support.rows import plan_sends
from tests.support.times import iso

STAFF = "frontdesk@clinic.example"
DAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("complaints_", "sent", "delivered", "level"),
    [
        (1, 10, 10, None),  # one unlucky complaint on a quiet day: 1 / 1000, not over 0.1%
        (2, 10, 10, ALERT),  # two in a day alert even on a small list
        (3, 10, 10, ALERT),
        (4, 10, 10, PAUSE),
        (10, 10_000, 9_000, None),  # exactly 0.1% is not over it
        (11, 10_000, 9_000, ALERT),
        (30, 10_000, 9_000, ALERT),  # exactly 0.3%
        (31, 9_000, 10_000, PAUSE),  # late deliveries count when they outnumber sends
    ],
)
def test_the_rate_and_its_floor(
    complaints_: int, sent: int, delivered: int, level: str | None
) -> None:
    fig = DayFigures(DAY, complaints_, sent, delivered)
    assert fig.level() == level
    assert fig.volume == max(sent, delivered, 0)


def _state(db_url: str) -> complaints.ComplaintState:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            return complaints.load(conn)
    finally:
        db.dispose()


def _pending(db_url: str) -> list[dict[str, object]]:
    """The complaint alerts waiting in the ops-alert queue (their variables)."""
    db = Database(db_url)
    try:
        with db.begin() as conn:
            return complaints.pending_alerts(conn)
    finally:
        db.dispose()


def _report(db_url: str, who: str, ids: dict[str, str], n: int) -> None:
    at = MONDAY + timedelta(hours=1, minutes=n)
    deliver_events(db_url, [sg("spamreport", who, at, ids[who])], at + timedelta(seconds=5))


def _housekeeping(at_text: str) -> dict[str, object]:
    ctx = AppContext.from_settings(load_settings())
    try:
        return housekeeping(ctx, datetime.fromisoformat(at_text))
    finally:
        ctx.close()


def test_complaints_alert_once_a_day_then_pause_campaign_email_until_resumed(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    cli.env("CLINICMAIL_STAFF_EMAIL", STAFF)
    import_and_send(cli, tmp_path, people(10))
    ids = send_ids(db_url)
    assert len(ids) == 10
    addresses = sorted(ids)

    _report(db_url, addresses[0], ids, 0)
    state = _state(db_url)
    assert not state.paused and _pending(db_url) == []  # one complaint among 10 sends: nothing

    _report(db_url, addresses[1], ids, 1)
    _report(db_url, addresses[2], ids, 2)
    state = _state(db_url)
    assert not state.paused
    assert [a["level"] for a in _pending(db_url)] == [ALERT]  # one alert for the day, not two
    assert _pending(db_url)[0]["complaints"] == 2

    assert _housekeeping(iso(MONDAY + timedelta(hours=2)))["complaint_alerts_sent"] == 1
    staff_mail = [m for m in outbox_messages(db_url) if m[0] == STAFF]
    assert len(staff_mail) == 1
    subject, text = staff_mail[0][1], staff_mail[0][2]
    assert "spam" in subject.lower() and "2026-11-23" in subject
    assert "Nothing has been paused yet" in text
    for private in (*addresses, "P0", "P1", "lower_back"):
        assert private not in subject and private not in text
    assert _pending(db_url) == []
    assert _housekeeping(iso(MONDAY + timedelta(hours=3)))["complaint_alerts_sent"] == 0

    _report(db_url, addresses[3], ids, 3)  # 4 of (at least) 1000: over 0.3%
    state = _state(db_url)
    assert state.paused and state.paused_because is not None
    assert state.paused_because["complaints"] == 4
    assert [a["level"] for a in _pending(db_url)] == [PAUSE]

    stats = cli("stats", "--json")
    assert stats.code == 0, stats.err
    assert stats.json()["list_health"]["campaigns_paused"] is True
    status = cli("health", "status")
    assert status.code == 0 and "PAUSED" in status.out

    # While paused: campaign email waits, a new signup's confirmation still goes.
    next_monday = MONDAY + timedelta(days=7)
    with app_for(cli) as (client, _ctx):
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["campaigns_paused"] is True
        body = {"email": "new@example.com", "consent": True, "symptoms": ["neck"]}
        assert client.post("/api/subscribers", json=body).status_code == 202
    before = len(outbox_messages(db_url))
    week2 = cli("tick", "--now", iso(next_monday), "--json")
    assert week2.code == 0, week2.err
    assert week2.json()["sent"] == 1
    # The tick hands the waiting alert about the pause to staff first (the one deliverer).
    assert [m[0] for m in outbox_messages(db_url)[before:]] == [STAFF, "new@example.com"]
    assert _housekeeping(iso(next_monday))["complaint_alerts_sent"] == 0
    pause_mail = [m for m in outbox_messages(db_url) if m[0] == STAFF][-1]
    assert "Campaign email is paused" in pause_mail[2]
    assert "clinicmail health resume" in pause_mail[2]

    resumed = cli("health", "resume")
    assert resumed.code == 0, resumed.err
    assert "resumed" in resumed.out
    assert cli("health", "resume").out.startswith("campaign email was not paused")
    with app_for(cli) as (client, _ctx):
        assert client.get("/healthz").json()["campaigns_paused"] is False

    # The six who did not complain get their week-2 email at the next tick after the pause.
    before = len(outbox_messages(db_url))
    later = cli("tick", "--now", iso(next_monday + timedelta(hours=1)), "--json")
    assert later.code == 0, later.err
    assert later.json()["sent"] == 6
    got = sorted(m[0] for m in outbox_messages(db_url)[before:])
    assert got == addresses[4:]


def test_the_pause_holds_campaign_rows_already_in_the_ledger(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    """Rows planned before the pause (waiting for a window or a retry) wait too; system email
    in the ledger still goes."""
    import_and_send(cli, tmp_path, people(5))
    ids = send_ids(db_url)
    for n, who in enumerate(sorted(ids)[:4]):
        _report(db_url, who, ids, n)
    assert _state(db_url).paused

    at = MONDAY + timedelta(days=7)
    db = Database(db_url)
    try:
        with db.begin() as conn:
            sid = conn.execute(
                select(subscribers.c.id).where(subscribers.c.email_key == sorted(ids)[4])
            ).scalar_one()
            for kind, campaign, step in (
                (CAMPAIGN, "spasm-education", "x-held"),
                (SYSTEM, "_system", "safety"),
            ):
                plan_sends(conn, sid, campaign, kind, (step,), at - timedelta(minutes=5))
        tick = cli("tick", "--now", iso(at), "--json")
        assert tick.code == 0, tick.err
        assert tick.json()["sent"] == 1  # the safety email
        with db.begin() as conn:
            rows = dict(
                conn.execute(
                    select(sends.c.step_id, sends.c.status).where(sends.c.subscriber_id == sid)
                ).all()
            )
            held = conn.execute(
                select(sends.c.next_attempt_at).where(sends.c.step_id == "x-held")
            ).scalar_one()
    finally:
        db.dispose()
    assert rows["safety"] == "sent"
    assert rows["x-held"] == "pending"
    assert held == at + timedelta(hours=1)


def test_health_commands_explain_themselves(sqlite_cli: CLI) -> None:
    top = sqlite_cli("health", "--help")
    assert top.code == 0 and "0.3%" in top.out and "resume" in top.out
    resume = sqlite_cli("health", "resume", "--help")
    assert resume.code == 0 and "spam complaints" in resume.out
    sunset = sqlite_cli("health", "sunset", "--help")
    assert sunset.code == 0 and "--dry-run" in sunset.out
    nothing = sqlite_cli("health", "resume")
    assert nothing.code == 0 and "not paused" in nothing.out
