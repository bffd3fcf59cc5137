"""Retention: the hourly housekeeping keeps raw webhook payloads, outbox messages, unconfirmed
signups and staff sign-in attempts only as long as the CLINICMAIL_RETAIN_* settings say, and
leaves what is younger alone. On both databases."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import time_machine
from sqlalchemy import func, insert, select

from app.context import AppContext
from app.service import housekeeping_job
from app.settings import load_settings
from engagement.tables import email_events
from staff.tables import login_attempts
from storage import utcnow
from subscribers.tables import subscribers
from tests.support.app import ANN, app_for
from tests.support.cli import CLI, assert_one_line_error
from tests.support.delivery import import_people, londoners
from tests.support.times import future_noon, iso
from transports.tables import outbox


def _count(ctx: AppContext, table: object, *where: object) -> int:
    with ctx.db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def _event(ctx: AppContext, key: str, at: object) -> None:
    with ctx.db.begin() as conn:
        conn.execute(
            insert(email_events).values(
                provider="sendgrid",
                natural_key=key,
                event="delivered",
                kind="delivered",
                machine=False,
                received_at=at,
                applied_at=at,
                payload=json.dumps({"email": "a0@example.com", "event": "delivered"}),
            )
        )


def test_housekeeping_applies_the_retention_settings(cli: CLI, tmp_path: Path) -> None:
    for name, setting in (("EVENT_PAYLOADS", "10"), ("OUTBOX", "20"), ("LOGIN_ATTEMPTS", "30")):
        cli.env(f"CLINICMAIL_RETAIN_{name}_DAYS", setting)
    cli.env("CLINICMAIL_RETAIN_UNCONFIRMED_DAYS", "3")
    import_people(cli, tmp_path, londoners("a", 2))
    sent_at = future_noon()
    assert cli("tick", "--now", iso(sent_at), "--json").json()["sent"] == 2
    with app_for(cli) as (client, ctx):
        assert client.post("/api/subscribers", json=ANN).status_code == 202  # never confirmed
        now = utcnow()
        _event(ctx, "old", now - timedelta(days=11))
        _event(ctx, "young", now - timedelta(days=5))
        with ctx.db.begin() as conn:
            for age in (31, 25):
                conn.execute(
                    insert(login_attempts).values(
                        email_key="ops@clinic.example",
                        outcome="failure",
                        at=now - timedelta(days=age),
                    )
                )
        assert _count(ctx, outbox) == 2
    settings = load_settings()
    # Two days on: the signup is young enough, the outbox messages too.
    with time_machine.travel(utcnow() + timedelta(days=2), tick=True):
        ctx = AppContext.from_settings(settings)
        try:
            housekeeping_job(ctx)
            assert _count(ctx, subscribers, subscribers.c.email_key == "ann@example.com") == 1
            assert _count(ctx, outbox) == 2
            assert _count(ctx, email_events, email_events.c.payload == "{}") == 1  # "old" only
            assert _count(ctx, email_events, email_events.c.payload.contains("a0@")) == 1
            assert _count(ctx, email_events) == 2  # the facts stay
            assert _count(ctx, login_attempts) == 1  # the 31-day-old one is gone
        finally:
            ctx.close()
    # A month on: the unconfirmed signup and the outbox messages have outlived their settings.
    with time_machine.travel(sent_at + timedelta(days=21), tick=True):
        ctx = AppContext.from_settings(settings)
        try:
            housekeeping_job(ctx)
            assert _count(ctx, subscribers, subscribers.c.email_key == "ann@example.com") == 0
            assert _count(ctx, subscribers) == 2  # the confirmed ones stay
            assert _count(ctx, outbox) == 0
            assert _count(ctx, email_events, email_events.c.payload.contains("@")) == 0
        finally:
            ctx.close()


def test_a_bad_retention_setting_is_one_line(sqlite_cli: CLI) -> None:
    sqlite_cli.env("CLINICMAIL_RETAIN_OUTBOX_DAYS", "0")
    assert_one_line_error(sqlite_cli("init"), "CLINICMAIL_RETAIN_OUTBOX_DAYS")
