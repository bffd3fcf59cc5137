"""`clinicmail subscribers export|erase` and the expiry of unconfirmed signups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns.ledger import sends
from campaigns.tables import enrollments
from engagement.tables import email_events
from storage import Database
from storage.keys import suppression_hash
from subscribers.addresses import address_hash
from subscribers.housekeeping import expire_unconfirmed
from subscribers.tables import consent_events, subscriber_symptoms, subscribers, suppressions
from tests.support.app import app_for, context_for
from tests.support.backends import BACKENDS
from tests.support.cli import CLI, write_csv
from tests.support.signer import Signer
from tests.support.times import iso
from transports.tables import outbox

MONDAY_10_LONDON = "2026-11-23T10:00:00Z"
ANN_ROW = "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,2026-11-01T09:00:00Z,clinic"
BOB_ROW = "bob@example.com,Bob,neck,Europe/London,yes,,"


def _imported(cli: CLI, tmp_path: Path, *rows: str) -> Path:
    path = write_csv(tmp_path / "people.csv", list(rows or (ANN_ROW, BOB_ROW)))
    result = cli("subscribers", "import", str(path), "--json")
    assert result.code == 0, result.err
    return path


def _count(db: Database, table: object) -> int:
    with db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_export_holds_everything_about_one_person(cli: CLI, tmp_path: Path) -> None:
    _imported(cli, tmp_path)
    assert cli("tick", "--now", MONDAY_10_LONDON).code == 0
    result = cli("subscribers", "export", "ANN@example.com")
    assert result.code == 0, result.err
    data = result.json()
    assert data["profile"]["email"] == "ann@example.com"
    assert data["profile"]["first_name"] == "Ann"
    assert data["profile"]["status"] == "confirmed"
    assert data["profile"]["confirmed_at"].startswith("2026-11-01T09:00:00")
    assert data["symptoms"] == [
        {"code": "lower_back", "label": "Lower back", "group": "Where"},
        {"code": "sciatica", "label": "Into the leg", "group": "Spreading"},
    ]
    assert [(e["purpose"], e["action"]) for e in data["consent_events"]] == [
        ("email_education", "given"),
        ("email_education", "confirmed"),
        ("health_data", "given"),
    ]
    assert [e["campaign_id"] for e in data["enrollments"]] == ["spasm-education"]
    [send] = data["sends"]
    assert send["campaign_id"] == "spasm-education" and send["status"] == "sent"
    assert set(send) >= {"send_id", "step_id", "created_at", "sent_at", "content_version"}
    assert send["content_version"]  # the content version the email was rendered from
    assert data["suppression"] == {"suppressed": False}
    # only Ann: nothing about Bob, and no message content
    assert "bob" not in result.out.lower()
    assert "message" not in {k for s in data["sends"] for k in s}


def test_export_of_an_unknown_or_bad_address_is_one_line(cli: CLI) -> None:
    assert cli("init").code == 0
    unknown = cli("subscribers", "export", "nobody@example.com")
    assert unknown.code == 1 and unknown.out == ""
    assert unknown.err.strip().count("\n") == 0 and "no subscriber" in unknown.err
    bad = cli("subscribers", "export", "not an address")
    assert bad.code == 1 and "invalid email" in bad.err and "Traceback" not in bad.err


def test_erase_removes_everything_and_keeps_only_the_hash(cli: CLI, tmp_path: Path) -> None:
    people = _imported(cli, tmp_path)
    assert cli("tick", "--now", MONDAY_10_LONDON).code == 0
    signer = Signer()
    cli.env("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    with app_for(cli) as (client, ctx):
        db = ctx.db
        before = {t.name: _count(db, t) for t in (subscribers, sends, outbox, enrollments)}
        assert before == {"subscribers": 2, "sends": 2, "outbox": 2, "enrollments": 2}
        with db.begin() as conn:
            send_ids = dict(
                conn.execute(
                    select(subscribers.c.email_key, sends.c.send_id).join(
                        sends, sends.c.subscriber_id == subscribers.c.id
                    )
                ).all()
            )
        events = [
            {
                "email": email,
                "event": "delivered",
                "timestamp": 1795428000,
                "sg_event_id": f"ev-{email}",
                "sg_message_id": f"m-{email}",
                "send_id": send_ids[email],
            }
            for email in ("ann@example.com", "bob@example.com")
        ]
        body = json.dumps(events).encode("utf-8")
        posted = signer.post(client, body)
        assert posted.status_code < 300
        assert _count(db, email_events) == 2
        result = cli("subscribers", "erase", "Ann@Example.com")
        assert result.code == 0, result.err
        assert "erased" in result.out
        with db.begin() as conn:
            assert conn.execute(select(subscribers.c.email)).scalars().all() == ["bob@example.com"]
            bob = conn.execute(select(subscribers.c.id)).scalar_one()
            for table in (subscriber_symptoms, consent_events, sends, outbox, enrollments):
                owners = set(conn.execute(select(table.c.subscriber_id)).scalars())
                assert owners == {bob}, table.name
            assert conn.execute(select(outbox.c.recipient)).scalars().all() == ["bob@example.com"]
            payloads = conn.execute(select(email_events.c.payload)).scalars().all()
            assert len(payloads) == 1 and "bob@example.com" in payloads[0]
            rows = conn.execute(select(suppressions)).mappings().all()
            keyed = suppression_hash(conn, "ann@example.com")
        assert [(r["email_hash"], r["reason"]) for r in rows] == [(keyed, "erased")]
        assert keyed != address_hash("ann@example.com")  # a keyed hash, not bare SHA-256
        # nothing readable is left anywhere in the database
        if db.is_sqlite:
            assert db.url.database is not None
            raw = Path(db.url.database).read_bytes()
            for path in Path(db.url.database).parent.glob("clinicmail.db-wal"):
                raw += path.read_bytes()
            assert b"ann@example.com" not in raw.lower()

    again = cli("subscribers", "erase", "ann@example.com")
    assert again.code == 0 and "already" in again.out
    assert cli("subscribers", "export", "ann@example.com").code == 1
    # a later import of the same file cannot add her back, and says why
    report = tmp_path / "rejects.csv"
    reimport = cli("subscribers", "import", str(people), "--json", "--report", str(report))
    assert reimport.json() == {"imported": 0, "updated": 0, "unchanged": 1, "rejected": 1}
    assert "suppressed" in report.read_text(encoding="utf-8")
    assert "ann@example.com" in report.read_text(encoding="utf-8")


def test_erasing_an_unknown_address_still_blocks_it(cli: CLI, tmp_path: Path) -> None:
    assert cli("init").code == 0
    result = cli("subscribers", "erase", "ghost@example.com")
    assert result.code == 0
    assert "nothing held" in result.out and "suppression list" in result.out
    imported = cli(
        "subscribers",
        "import",
        str(write_csv(tmp_path / "g.csv", ["GHOST@example.com,,,,yes,,"])),
        "--json",
    )
    assert imported.json()["rejected"] == 1 and imported.json()["imported"] == 0
    bad = cli("subscribers", "erase", "@@@")
    assert bad.code == 1 and bad.err.count("\n") == 1


def test_signup_after_erasure_stores_nothing(cli: CLI) -> None:
    assert cli("subscribers", "erase", "gone@example.com").code == 0
    with app_for(cli) as (client, ctx):
        reply = client.post("/api/subscribers", json={"email": "gone@example.com", "consent": True})
        assert reply.status_code == 202
        assert _count(ctx.db, subscribers) == 0 and _count(ctx.db, sends) == 0


def test_unconfirmed_signups_expire_after_seven_days(cli: CLI) -> None:
    now = datetime.now(UTC)
    with app_for(cli) as (client, ctx):
        for name in ("old", "fresh"):
            body = {"email": f"{name}@example.com", "symptoms": ["neck"], "consent": True}
            assert client.post("/api/subscribers", json=body).status_code == 202
        with ctx.db.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.email_key == "old@example.com")
                .values(created_at=now - timedelta(days=7, minutes=1))
            )
        _imported(
            cli,
            Path(str(ctx.db.url.database or "/tmp")).parent if ctx.db.is_sqlite else cli.workdir,
        )
        with ctx.db.begin() as conn:
            # confirmed people are never touched, however old
            conn.execute(
                subscribers.update()
                .where(subscribers.c.status == "confirmed")
                .values(created_at=now - timedelta(days=400))
            )
            assert expire_unconfirmed(conn, now) == 1
        with ctx.db.begin() as conn:
            assert sorted(conn.execute(select(subscribers.c.email_key)).scalars()) == [
                "ann@example.com",
                "bob@example.com",
                "fresh@example.com",
            ]
            assert expire_unconfirmed(conn, now) == 0
            assert expire_unconfirmed(conn, now + timedelta(days=8)) == 1
        assert _count(ctx.db, sends) == 0  # the queued confirmation emails went with them
        assert cli("tick", "--now", iso(now + timedelta(days=9))).code == 0


@pytest.mark.parametrize("command", ["export", "erase"])
def test_help(sqlite_cli: CLI, command: str) -> None:
    result = sqlite_cli("subscribers", command, "--help")
    assert result.code == 0 and "EMAIL" in result.out


def _store_events(db: Database, events: list[dict[str, object]]) -> None:
    """Store provider events as the webhook does, then apply them as a tick does."""
    import orjson

    from engagement.ingest import parse_sendgrid, store
    from engagement.process import apply_pending

    with db.begin() as conn:
        store(conn, parse_sendgrid(orjson.dumps(events)), datetime.now(UTC))
    apply_pending(db.begin, datetime.now(UTC))


def _send_ids(db: Database) -> dict[str, str]:
    with db.begin() as conn:
        return dict(
            conn.execute(
                select(subscribers.c.email_key, sends.c.send_id).join(
                    sends, sends.c.subscriber_id == subscribers.c.id
                )
            ).all()
        )


def test_export_includes_events_activity_and_checkins(cli: CLI, tmp_path: Path) -> None:
    from subscribers import activity

    _imported(cli, tmp_path)
    assert cli("tick", "--now", MONDAY_10_LONDON).code == 0
    with context_for(cli) as ctx:
        ann_send = _send_ids(ctx.db)["ann@example.com"]
        click = {
            "email": "ann@example.com",
            "event": "click",
            "timestamp": 1795431600,
            "sg_event_id": "ev-click",
            "send_id": ann_send,
            "ip": "203.0.113.7",
            "useragent": "Mozilla/5.0 (Ann's phone)",
            "url": "https://clinic.example/book",
        }
        _store_events(ctx.db, [click])
        with ctx.db.begin() as conn:
            ann = conn.execute(
                select(subscribers.c.id).where(subscribers.c.email_key == "ann@example.com")
            ).scalar_one()
            activity.record(
                conn,
                ann,
                "checkin",
                datetime(2026, 11, 24, 9, tzinfo=UTC),
                campaign_id="spasm-education",
                step_id="why-your-back-locks-up",
                value="worse",
            )
    result = cli("subscribers", "export", "ann@example.com")
    assert result.code == 0, result.err
    data = result.json()
    [event] = [e for e in data["events"] if e["event"] == "click"]
    assert event["payload"]["ip"] == "203.0.113.7"
    assert event["payload"]["useragent"] == "Mozilla/5.0 (Ann's phone)"
    assert event["url"] == "https://clinic.example/book" and event["send_id"] == ann_send
    assert [(a["kind"], a["campaign_id"]) for a in data["activity"]] == [
        ("click", "spasm-education")
    ]
    assert [(c["step_id"], c["value"]) for c in data["checkins"]] == [
        ("why-your-back-locks-up", "worse")
    ]
    assert [m["recipient"] for m in data["stored_messages"]] == ["ann@example.com"]
    assert data["sunset"] == []
    assert "bob" not in result.out.lower()


def test_erase_finishes_on_disk_once_a_concurrent_reader_closes(
    sqlite_cli: CLI, tmp_path: Path
) -> None:
    import sqlite3

    from subscribers.privacy import finish_pending_scrub

    cli = sqlite_cli
    _imported(cli, tmp_path)
    assert cli("tick", "--now", MONDAY_10_LONDON).code == 0
    db_file = tmp_path / "clinicmail.db"

    def on_disk() -> bytes:
        raw = db_file.read_bytes()
        wal = tmp_path / "clinicmail.db-wal"
        return (raw + (wal.read_bytes() if wal.exists() else b"")).lower()

    reader = sqlite3.connect(db_file, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM subscribers").fetchone() == (2,)
    try:
        erased = cli("subscribers", "erase", "ann@example.com")
        assert erased.code == 0, erased.err
        # Honest: the rows are gone, but the old pages are still on disk while the reader lasts.
        assert "not yet final on disk" in erased.err
        assert b"ann@example.com" in on_disk()
    finally:
        reader.close()
    db = Database(f"sqlite:///{db_file}")
    try:
        assert finish_pending_scrub(db) is True  # housekeeping, once the reader is gone
        assert b"ann@example.com" not in on_disk()
        assert finish_pending_scrub(db) is None  # nothing left to do
    finally:
        db.dispose()


@pytest.mark.parametrize("db_url", [BACKENDS[1]], indirect=True)
def test_erase_vacuums_the_touched_tables_on_postgres(
    db_url: str, cli: CLI, tmp_path: Path
) -> None:
    _imported(cli, tmp_path)
    erased = cli("subscribers", "erase", "ann@example.com")
    assert erased.code == 0 and "not yet final" not in erased.err
    db = Database(db_url)
    try:
        with db.begin() as conn:
            vacuumed = set(
                conn.exec_driver_sql(
                    "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL"
                ).scalars()
            )
    finally:
        db.dispose()
    assert {"subscribers", "consent_events", "email_events", "sends"} <= vacuumed


def test_expired_signups_take_their_stored_events_with_them(cli: CLI, tmp_path: Path) -> None:
    from app.privacy import drop_events

    now = datetime.now(UTC)
    with app_for(cli) as (client, ctx):
        body = {"email": "late@example.com", "symptoms": ["neck"], "consent": True}
        assert client.post("/api/subscribers", json=body).status_code == 202
        assert cli("tick", "--now", iso(now + timedelta(minutes=1))).code == 0
        confirm_send = _send_ids(ctx.db)["late@example.com"]
        _store_events(
            ctx.db,
            [
                {
                    "email": "late@example.com",
                    "event": "delivered",
                    "timestamp": 1795428000,
                    "sg_event_id": "ev-late",
                    "send_id": confirm_send,
                    "ip": "198.51.100.4",
                },
                # an event that lost the address still names its send
                {"event": "open", "timestamp": 1795428060, "send_id": confirm_send},
            ],
        )
        assert _count(ctx.db, email_events) == 2
        with ctx.db.begin() as conn:
            assert expire_unconfirmed(conn, now + timedelta(days=8), on_expire=drop_events) == 1
        assert _count(ctx.db, email_events) == 0
        assert _count(ctx.db, subscribers) == 0
