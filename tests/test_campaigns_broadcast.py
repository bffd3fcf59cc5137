"""`clinicmail campaigns broadcast`: a one-off email to a segment at each subscriber's local
time, through the ledger, planner and dispatch, driven only through the CLI and `tick --now`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from campaigns import enrollment
from campaigns.ledger import sends
from storage import Database
from subscribers import store
from subscribers.tables import subscribers
from tests.support.approval import broadcast_approved
from tests.support.cli import CLI, write_csv
from tests.support.newsletter import news_files
from tests.support.times import iso
from transports.tables import outbox


def _day(offset: int = 5) -> date:
    """A day comfortably after anything the test does in real time."""
    return (datetime.now(UTC) + timedelta(days=offset)).date()


def _at(day: date, zone: str, hour: int = 9, minute: int = 0) -> datetime:
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC)


def _no_series(cli: CLI, tmp_path: Path) -> None:
    """A library with no active series, so only the broadcast is in play."""
    lib = tmp_path / "lib"
    (lib / "later").mkdir(parents=True)  # an empty library is refused: one draft series
    (lib / "later" / "campaign.yaml").write_text(
        "id: later\nname: Later\nstatus: draft\n", encoding="utf-8"
    )
    (lib / "later" / "01-hello.md").write_text(
        '---\nsubject: "Hello"\npreheader: "Hi."\n---\nHello.\n', encoding="utf-8"
    )
    cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(lib))


def _import(cli: CLI, tmp_path: Path, rows: list[str]) -> None:
    run = cli("subscribers", "import", str(write_csv(tmp_path / "people.csv", rows)), "--json")
    assert run.code == 0, run.err
    assert run.json()["rejected"] == 0


def _tick(cli: CLI, at: datetime) -> dict[str, object]:
    run = cli("tick", "--now", iso(at), "--json")
    assert run.code == 0, run.err
    return dict(run.json())


def _received(db_url: str) -> dict[str, list[str]]:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            out: dict[str, list[str]] = {}
            for to, subject in conn.execute(
                select(outbox.c.recipient, outbox.c.subject).order_by(outbox.c.id)
            ):
                out.setdefault(to.lower(), []).append(subject)
            return out
    finally:
        db.dispose()


def _ledger(db_url: str, campaign_id: str) -> dict[str, str]:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            return {
                email: status
                for email, status in conn.execute(
                    select(subscribers.c.email_key, sends.c.status)
                    .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
                    .where(sends.c.campaign_id == campaign_id)
                )
            }
    finally:
        db.dispose()


def _list(cli: CLI) -> dict[str, dict[str, object]]:
    run = cli("campaigns", "broadcasts", "--json")
    assert run.code == 0, run.err
    return {r["id"]: r for r in run.json()}


def test_local_time_delivery_across_zones_once_each(cli: CLI, tmp_path: Path, db_url: str) -> None:
    _no_series(cli, tmp_path)
    _import(
        cli,
        tmp_path,
        [
            "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
            "bob@example.com,Bob,neck,America/New_York,yes,,",
            "cat@example.com,Cat,lower_back,,yes,,",  # no zone: the clinic's (London)
            "dee@example.com,Dee,neck,Asia/Tokyo,yes,,",
        ],
    )
    day = _day()
    news = news_files(tmp_path)
    at = f"{day} 09:00"

    dry = cli("campaigns", "broadcast", str(news), "--at", at, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    plan = dry.json()
    assert plan["recipients"] == 4 and plan["added"] == 0 and plan["dry_run"] is True
    zones = {z["zone"]: (z["count"], z["utc"]) for z in plan["zones"]}
    assert zones == {
        "Asia/Tokyo": (1, iso(_at(day, "Asia/Tokyo"))),
        "Europe/London": (2, iso(_at(day, "Europe/London"))),
        "America/New_York": (1, iso(_at(day, "America/New_York"))),
    }
    assert _list(cli) == {}  # a dry run stores nothing

    run = broadcast_approved(cli, str(news), "--at", at, "--json")
    assert run.code == 0, run.err
    assert run.json()["added"] == 4
    # Running the same command again changes nothing and sends nobody anything twice.
    again = cli("campaigns", "broadcast", str(news), "--at", at, "--json")
    assert again.code == 0, again.err
    assert again.json()["added"] == 0 and again.json()["already_scheduled"] is True
    assert _list(cli)["news"]["state"] == "scheduled"

    tokyo, london, new_york = (
        _at(day, "Asia/Tokyo"),
        _at(day, "Europe/London"),
        _at(day, "America/New_York"),
    )
    assert _tick(cli, tokyo - timedelta(minutes=1))["sent"] == 0
    assert _tick(cli, tokyo)["sent"] == 1
    assert set(_received(db_url)) == {"dee@example.com"}
    assert _tick(cli, london - timedelta(minutes=1))["sent"] == 0
    assert _tick(cli, london)["sent"] == 2
    assert set(_received(db_url)) == {"dee@example.com", "ann@example.com", "cat@example.com"}
    assert _list(cli)["news"]["state"] == "sending"
    assert _tick(cli, new_york)["sent"] == 1
    assert _tick(cli, new_york)["sent"] == 0  # the same --now twice sends nothing
    assert _tick(cli, new_york + timedelta(days=8))["sent"] == 0

    received = _received(db_url)
    assert received == {
        "dee@example.com": ["Holiday hours, and a tip for your neck"],
        "ann@example.com": ["Holiday opening hours"],
        "cat@example.com": ["Holiday opening hours"],
        "bob@example.com": ["Holiday hours, and a tip for your neck"],
    }
    assert set(_ledger(db_url, "broadcast.news").values()) == {"sent"}
    row = _list(cli)["news"]
    assert (row["state"], row["audience"], row["sent"], row["waiting"]) == ("done", 4, 4, 0)
    # The content lives in the database: the file can go away.
    news.unlink()
    assert _list(cli)["news"]["subject"] == "Holiday opening hours"


def test_segment_suppression_unsubscribe_red_flag_and_pause(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    _no_series(cli, tmp_path)
    _import(
        cli,
        tmp_path,
        [
            "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
            "bob@example.com,Bob,neck,Europe/London,yes,,",  # outside the segment
            "eve@example.com,Eve,sciatica;red_flag_leg_weakness,Europe/London,yes,,",
            "fay@example.com,Fay,sciatica,Europe/London,yes,,",  # suppressed before
            "gus@example.com,Gus,sciatica,Europe/London,yes,,",  # unsubscribes after
            "hal@example.com,Hal,sciatica,Europe/London,yes,,",  # pausing email
            "ivy@example.com,Ivy,sciatica,Europe/London,yes,,",  # bounces after planning
        ],
    )
    (tmp_path / "sciatica.yaml").write_text("has: sciatica\n", encoding="utf-8")
    day = _day()
    send_at = _at(day, "Europe/London")
    db = Database(db_url)
    try:
        with db.begin() as conn:
            store.suppress(conn, "fay@example.com", "bounce", datetime.now(UTC))
            conn.execute(
                update(subscribers)
                .where(subscribers.c.email_key == "hal@example.com")
                .values(paused_until=send_at + timedelta(days=14))
            )
        news = news_files(tmp_path)
        args = ("campaigns", "broadcast", str(news), "--at", f"{day} 09:00")
        dry = cli(*args, "--segment", "@" + str(tmp_path / "sciatica.yaml"), "--dry-run", "--json")
        assert dry.code == 0, dry.err
        assert dry.json()["recipients"] == 3  # ann, gus, ivy
        assert dry.json()["excluded"] == {"red_flag": 1, "suppressed": 1, "paused": 1}
        run = broadcast_approved(cli, *args[2:], "--segment", '{"has": "sciatica"}', "--json")
        assert run.code == 0, run.err
        assert run.json()["added"] == 3
        with db.begin() as conn:
            gus = store.by_email_key(conn, "gus@example.com")
            assert gus is not None
            store.unsubscribe(conn, gus, datetime.now(UTC), "test")
            enrollment.leave_all(conn, gus, datetime.now(UTC))
        # Ivy's row is planned, then her address bounces before dispatch claims it.
        dry_tick = cli("tick", "--now", iso(send_at), "--dry-run", "--json")
        assert dry_tick.json()["planned"] == 2
        with db.begin() as conn:
            store.suppress(conn, "ivy@example.com", "bounce", datetime.now(UTC))
        assert _tick(cli, send_at)["cancelled"] == 1
        got = {to for to, subjects in _received(db_url).items() if "Holiday" in subjects[-1]}
        assert got == {"ann@example.com"}  # (Eve had her safety email at import, nothing else)
        assert _ledger(db_url, "broadcast.news") == {
            "ann@example.com": "sent",
            "ivy@example.com": "cancelled",
        }
        # Hal's pause ends a week later: a broadcast is skipped, not caught up.
        assert _tick(cli, send_at + timedelta(days=15))["sent"] == 0
        row = _list(cli)["news"]
        assert (row["audience"], row["sent"], row["failed"], row["waiting"]) == (3, 1, 1, 0)
        assert row["skipped"] == 1 and row["state"] == "done"
    finally:
        db.dispose()


def test_frequency_cap_waits_and_counts(cli: CLI, tmp_path: Path, db_url: str) -> None:
    """With the bundled weekly series: someone emailed two days before gets the broadcast when
    the seven-day cap allows, and their next series email then waits seven days."""
    _import(cli, tmp_path, ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    day = _day(3)
    first = _at(day, "Europe/London", 10)
    assert _tick(cli, first)["sent"] == 1  # the series' first email
    news = news_files(tmp_path)
    at = f"{day + timedelta(days=2)} 09:00"
    dry = cli("campaigns", "broadcast", str(news), "--at", at, "--dry-run", "--json").json()
    assert dry["waiting_for_frequency_cap"] == 1
    assert dry["cap_until"] == iso(first + timedelta(days=7))
    assert broadcast_approved(cli, str(news), "--at", at).code == 0
    assert _tick(cli, _at(day + timedelta(days=2), "Europe/London"))["sent"] == 0
    # A week after the first email both are due; the broadcast goes first, the series waits.
    week = first + timedelta(days=7)
    assert _tick(cli, week)["sent"] == 1
    assert _tick(cli, week + timedelta(minutes=1))["sent"] == 0
    assert _received(db_url)["ann@example.com"][-1] == "Holiday opening hours"
    assert _tick(cli, week + timedelta(days=6))["sent"] == 0
    assert _tick(cli, week + timedelta(days=7, minutes=1))["sent"] == 1
    assert len(_received(db_url)["ann@example.com"]) == 3


def test_cancel_stops_who_is_still_waiting(cli: CLI, tmp_path: Path, db_url: str) -> None:
    _no_series(cli, tmp_path)
    _import(
        cli,
        tmp_path,
        [
            "ann@example.com,Ann,lower_back,Europe/London,yes,,",
            "bob@example.com,Bob,neck,America/New_York,yes,,",
        ],
    )
    day = _day()
    news = news_files(tmp_path)
    assert broadcast_approved(cli, str(news), "--at", f"{day} 09:00").code == 0
    assert _tick(cli, _at(day, "Europe/London"))["sent"] == 1
    run = cli("campaigns", "cancel-broadcast", "news")
    assert run.code == 0, run.err
    assert "1 not yet sent will not be; 1 already sent" in run.out
    assert _tick(cli, _at(day, "America/New_York"))["sent"] == 0
    assert list(_received(db_url)) == ["ann@example.com"]
    assert _list(cli)["news"]["state"] == "cancelled"
    # A cancelled id is never reused; another id schedules a fresh broadcast.
    reuse = cli("campaigns", "broadcast", str(news), "--at", f"{day} 09:00")
    assert reuse.code == 1 and "was cancelled" in reuse.err
    unknown = cli("campaigns", "cancel-broadcast", "nope")
    assert unknown.code == 1 and "known: news" in unknown.err


def test_bad_input_is_one_clear_line_and_schedules_nothing(sqlite_cli: CLI, tmp_path: Path) -> None:
    cli = sqlite_cli
    _no_series(cli, tmp_path)
    news = news_files(tmp_path)
    day = _day()

    def refused(*args: str) -> str:
        run = cli("campaigns", "broadcast", *args)
        assert run.code == 1, run.out
        assert "Traceback" not in run.err
        return run.err

    assert "--at must be a local date and time" in refused(str(news), "--at", "tomorrow")
    assert "outside the send window 08:00-20:00" in refused(str(news), "--at", f"{day} 21:30")
    assert "already passed" in refused(str(news), "--at", "2020-01-06 09:00")
    assert "unknown symptom code 'sciatic'" in refused(
        str(news), "--at", f"{day} 09:00", "--segment", "{has: sciatic}"
    )
    assert "names no campaign 'spasm-educaton'" in refused(
        str(news), "--at", f"{day} 09:00", "--segment", "{clicked: spasm-educaton/x}"
    )
    assert "no such file" in refused(str(tmp_path / "missing.md"), "--at", f"{day} 09:00")
    bad = tmp_path / "bad.md"
    bad.write_text("---\nsubject: Hi\ndelay_days: 3\n---\nHello\n", encoding="utf-8")
    err = refused(str(bad), "--at", f"{day} 09:00")
    assert f"{bad}:3: delay_days is not a known setting" in err
    bad.write_text("---\nsubject: Hi\n---\nHello\n\n{{ last_visit }}\n", encoding="utf-8")
    err = refused(str(bad), "--at", f"{day} 09:00")
    assert f"{bad}:6: body: unknown variable 'last_visit'" in err
    assert "1 problem(s)" in err and "nothing was scheduled" in err
    (tmp_path / "news.neck.md").unlink()
    assert "news.neck.md does not exist" in refused(str(news), "--at", f"{day} 09:00")
    assert _list(cli) == {}
    assert cli("campaigns", "broadcast", "--help").code == 0
