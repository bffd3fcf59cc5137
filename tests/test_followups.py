"""Red-flag follow-up as a tracked task (engagement.followups): a red-flag signup and a "worse"
check-in each open one follow-up; left open past CLINICMAIL_FOLLOWUP_WITHIN (one working day by
default) staff get one reminder through the staff-alert path, naming nobody; a clinician or ops
member closes it with an outcome and a note, audited in the same transaction; with follow-up
``off`` nothing opens and the safety email promises no contact."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.settings import SettingsError, load_settings
from engagement import followups
from engagement.tables import followups as followups_table
from staff import audit
from subscribers.symptoms import SYMPTOMS
from tests.support.app import app_for, context_for
from tests.support.cli import CLI, write_csv
from tests.support.outbox import messages, outbox_messages
from tests.support.tracking import part, paths, send_of, set_up

LABELS = {s.code: s.label for s in SYMPTOMS}
FLAG_CODES = ("red_flag_leg_weakness", "red_flag_saddle_numbness")
FLAG_LABELS = [LABELS["red_flag_leg_weakness"], LABELS["red_flag_saddle_numbness"]]
LONDON = ZoneInfo("Europe/London")
STAFF = "frontdesk@clinic.example"
PEOPLE = [
    "flag@example.com,Fay,lower_back;red_flag_saddle_numbness;red_flag_leg_weakness,"
    "Europe/London,yes,,",
    "calm@example.com,Cal,lower_back,Europe/London,yes,,",
]


def test_one_working_day_skips_the_weekend_and_the_clinics_holidays() -> None:
    policy = followups.Policy.parse("1 working day", LONDON, frozenset({date(2026, 12, 28)}))
    friday = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    assert policy.due(friday) == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday
    saturday = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert policy.due(saturday) == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    # Christmas week: Friday 25th to Monday 28th (a clinic holiday) is Tuesday 29th.
    xmas_eve = datetime(2026, 12, 24, 9, 30, tzinfo=UTC)
    assert policy.due(xmas_eve) == datetime(2026, 12, 25, 9, 30, tzinfo=UTC)
    assert policy.due(datetime(2026, 12, 25, 9, 30, tzinfo=UTC)) == datetime(
        2026, 12, 29, 9, 30, tzinfo=UTC
    )
    assert followups.Policy.parse("4 hours").due(friday) == datetime(2026, 12, 4, 19, 0, tzinfo=UTC)
    assert not followups.Policy.parse("off").enabled


@pytest.mark.parametrize("bad", ["soon", "0 hours", "1 fortnight", "working day", "2 working"])
def test_a_bad_follow_up_time_stops_start_up_naming_the_variable(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLINICMAIL_FOLLOWUP_WITHIN", bad)
    with pytest.raises(SettingsError, match=r"^CLINICMAIL_FOLLOWUP_WITHIN: must look like"):
        load_settings()


def _rows(db_url: str) -> list[dict[str, object]]:
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(followups_table))]
    finally:
        engine.dispose()


def test_a_red_flag_signup_opens_a_follow_up_that_reminds_staff_once(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    cli.env("CLINICMAIL_STAFF_EMAIL", STAFF)
    write_csv(tmp_path / "p.csv", PEOPLE)
    assert cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    (row,) = _rows(db_url)
    assert row["reason"] == "red_flag" and row["closed_at"] is None
    assert row["reported"] == {"codes": ["red_flag_leg_weakness", "red_flag_saddle_numbness"]}
    # Imported on the suite's clock (Saturday 21 November 2026, 09:00 UTC): due Monday.
    due = row["due_at"]
    assert isinstance(due, datetime) and due.replace(second=0, microsecond=0) == datetime(
        2026, 11, 23, 9, 0, tzinfo=UTC
    )
    cli("subscribers", "import", str(tmp_path / "p.csv"))  # again: nothing new opens
    assert len(_rows(db_url)) == 1

    # The safety email promises a personal reply: the clinic follows people up.
    first = cli("tick", "--now", "2026-11-22T10:00:00Z", "--json").json()
    assert first["followups_reminded"] == 0
    safety = next(m for m in outbox_messages(db_url) if m[0] == "flag@example.com")
    assert "someone from the team will get in touch" in safety[2]

    late = cli("tick", "--now", "2026-11-23T09:05:00Z", "--json").json()
    assert late["followups_reminded"] == 1
    reminders = [m for m in outbox_messages(db_url) if "Reminder: follow-ups" in m[1]]
    assert len(reminders) == 1
    to, subject, text = reminders[0]
    assert to == STAFF
    assert (
        "1 follow-up for people" in text and "https://mail.clinic.example/admin/followups" in text
    )
    for private in ("flag@example.com", "Fay", "saddle", "red_flag", *FLAG_LABELS):
        assert private not in subject and private not in text
    # Reminded once, however many ticks pass while it stays open.
    again = cli("tick", "--now", "2026-11-24T09:00:00Z", "--json").json()
    assert again["followups_reminded"] == 0
    assert len([m for m in outbox_messages(db_url) if "Reminder: follow-ups" in m[1]]) == 1


def test_closing_a_follow_up_is_audited_with_the_outcome_only(cli: CLI, tmp_path: Path) -> None:
    write_csv(tmp_path / "p.csv", PEOPLE)
    cli("subscribers", "import", str(tmp_path / "p.csv"))
    now = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    with context_for(cli) as ctx:
        with ctx.db.begin() as conn:
            (open_one,) = followups.open_ones(conn)
            assert open_one.what == [
                LABELS["red_flag_leg_weakness"],
                LABELS["red_flag_saddle_numbness"],
            ]
            assert followups.counts(conn, now) == followups.Counts(open=1, overdue=1)
        write = audit.writer(None, now)
        with pytest.raises(followups.FollowupError, match="short note"), ctx.db.begin() as conn:
            followups.acknowledge(conn, open_one.public_id, "contacted", "  ", "x", write, now)
        with (
            pytest.raises(followups.FollowupError, match="choose what happened"),
            ctx.db.begin() as conn,
        ):
            followups.acknowledge(conn, open_one.public_id, "maybe", "n", "x", write, now)
        with ctx.db.begin() as conn:
            followups.acknowledge(
                conn,
                open_one.public_id,
                "contacted",
                "Rang her: saddle numbness, sent to A&E",
                "cleo@clinic.example",
                write,
                now,
            )
        with (
            pytest.raises(followups.FollowupError, match="already closed by cleo@"),
            ctx.db.begin() as conn,
        ):
            followups.acknowledge(conn, open_one.public_id, "no_action", "n", "y", write, now)
        with ctx.db.begin() as conn:
            assert followups.counts(conn, now) == followups.Counts(open=0, overdue=0)
            (closed,) = followups.closed_ones(conn)
            entries = audit.entries(conn, target_type="followup")
        assert closed.outcome == "contacted" and closed.closed_by == "cleo@clinic.example"
        assert closed.note == "Rang her: saddle numbness, sent to A&E"
        (entry,) = entries
        assert (entry.action, entry.target_id) == ("followup.contacted", open_one.public_id)
        assert entry.detail == {"outcome": "contacted"}  # the note may hold health data
    # The person's data export carries their follow-ups, the note included.
    (exported,) = cli("subscribers", "export", "flag@example.com").json()["followups"]
    assert exported["outcome"] == "contacted" and exported["note"].startswith("Rang her")
    assert exported["reported"] == {"codes": sorted(FLAG_CODES)}


def test_a_worse_check_in_opens_a_follow_up_once(cli: CLI, tmp_path: Path) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        send_id = send_of(ctx, "ann@example.com")
        (msg,) = [m for m in messages(ctx, "ann@example.com") if "care note" in str(m["Subject"])]
        links = {p.rsplit("/", 1)[1]: p for p in paths(part(msg, "plain"), "checkin")}
        for answer in ("worse", "better", "worse"):
            assert client.post(links[answer], data={"via": "button"}).is_success
        with ctx.db.begin() as conn:
            (found,) = followups.open_ones(conn)
    assert found.reason == "checkin" and found.email == "ann@example.com"
    assert found.reported == {"answer": "worse", "campaign_id": "care-notes", "step_id": "first"}
    assert send_id  # one follow-up for the one answered email


def test_with_follow_up_off_nothing_opens_and_the_safety_email_promises_no_contact(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    cli.env("CLINICMAIL_FOLLOWUP_WITHIN", "off")
    write_csv(tmp_path / "p.csv", PEOPLE)
    cli("subscribers", "import", str(tmp_path / "p.csv"))
    assert _rows(db_url) == []
    cli("tick", "--now", "2026-11-23T10:00:00Z")
    safety = next(m for m in outbox_messages(db_url) if m[0] == "flag@example.com")
    assert "get in touch" not in safety[2]
    assert "call or write to people personally" in safety[2]
    # Staff are still alerted (at the from address when no staff address is set).
    assert any(m[0] == "care@clinic.example" for m in outbox_messages(db_url))
