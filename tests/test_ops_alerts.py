"""The one ops-alert queue and its one deliverer: an alert is raised once per occurrence, sent to
the staff contact through the real transport (the sendgrid client against a fake SendGrid on
loopback), tried again after a transient failure with the same send id, dropped after a refusal
for good; alerts waiting in the old per-producer state move into the queue with migration 2100."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select, text
from werkzeug import Response

from alerts import queue
from alerts.tables import ops_alerts
from app.context import AppContext
from app.settings import load_settings
from scheduler.alerting import AlertDeliverer, deliverer
from storage import Database, kvstate
from templates.system import (
    CAMPAIGN_ALERT,
    COMPLAINT_ALERT,
    CONFIRM,
    MESSAGE_ALERT,
    OPS_EMAILS,
    REGISTRY,
    STAFF,
    SYSTEM_EMAILS,
    TRANSPORT_ALERT,
    WEBHOOK_ALERT,
)
from tests.support.cli import CLI
from tests.support.sendgrid import FakeSendGrid, use_sendgrid

OPS = "ops@clinic.example"
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
HOOK = {"endpoint": "ep1", "url": "https://pms.example/hook", "since": "2026-11-20", "error": "x"}


def test_the_registry_names_every_system_email_once() -> None:
    assert set(SYSTEM_EMAILS) | set(OPS_EMAILS) == set(REGISTRY)
    assert not set(SYSTEM_EMAILS) & set(OPS_EMAILS)
    assert all(REGISTRY[name].audience == STAFF for name in OPS_EMAILS)
    assert all(not REGISTRY[name].unsubscribe for name in OPS_EMAILS)
    assert [n for n in SYSTEM_EMAILS if REGISTRY[n].asks_consent] == [CONFIRM]


def test_an_alert_goes_once_retried_after_a_transient_failure(
    cli: CLI, httpserver: HTTPServer, sendgrid: FakeSendGrid
) -> None:
    use_sendgrid(cli, httpserver)
    cli.env("CLINICMAIL_STAFF_EMAIL", OPS)
    cli.init()
    ctx = AppContext.from_settings(load_settings())
    try:
        with ctx.db.begin() as conn:
            assert queue.raise_alert(conn, WEBHOOK_ALERT, "ep1@t1", HOOK, NOW) is True
            assert queue.raise_alert(conn, WEBHOOK_ALERT, "ep1@t1", HOOK, NOW) is False
            with pytest.raises(KeyError):  # only an ops email can be an alert
                queue.raise_alert(conn, CONFIRM, "x", {}, NOW)
        sendgrid.replies.append(Response('{"errors":[{"message":"later"}]}', status=503))
        first = deliverer(ctx).deliver(NOW)
        assert first.requests == 1 and not first.sent
        with ctx.db.begin() as conn:
            [waiting] = queue.pending(conn)
        assert waiting.kind == WEBHOOK_ALERT and waiting.attempts == 1

        second = deliverer(ctx).deliver(NOW)
        assert second.sent == {WEBHOOK_ALERT: 1}
        assert deliverer(ctx).deliver(NOW).requests == 0  # delivered: not sent again
        with ctx.db.begin() as conn:
            assert queue.pending(conn) == []
            # raised again after delivery: the same occurrence, so no second email
            assert queue.raise_alert(conn, WEBHOOK_ALERT, "ep1@t1", HOOK, NOW) is False
            outcome = conn.execute(select(ops_alerts.c.outcome)).scalar_one()
        assert outcome == queue.SENT
        assert sendgrid.recipients == [OPS, OPS]
        tries = [body["personalizations"][0]["custom_args"] for body in sendgrid.requests]
        assert tries[0]["send_id"] == tries[1]["send_id"]  # one message, tried twice
        assert sendgrid.requests[1]["custom_args"]["step_id"] == WEBHOOK_ALERT
        assert sendgrid.requests[1]["categories"] == ["_system"]
        assert "switched off" in sendgrid.requests[1]["subject"]
        body = json.dumps(sendgrid.requests[1])
        assert "https://pms.example/hook" in body and "unsubscribe" not in body.lower()

        # Refused for good: dropped (logged), never tried again.
        with ctx.db.begin() as conn:
            queue.raise_alert(conn, MESSAGE_ALERT, "e@t", {"email": "a/b/c", "reason": "r"}, NOW)
        sendgrid.replies.append(Response('{"errors":[{"message":"bad"}]}', status=400))
        assert not deliverer(ctx).deliver(NOW).sent
        assert deliverer(ctx).deliver(NOW).requests == 0
        with ctx.db.begin() as conn:
            refused = conn.execute(
                select(ops_alerts.c.outcome).where(ops_alerts.c.kind == MESSAGE_ALERT)
            ).scalar_one()
        assert refused == queue.REFUSED

        # Nobody to tell: settled unsent (the producer's ERROR line must do).
        with ctx.db.begin() as conn:
            queue.raise_alert(conn, WEBHOOK_ALERT, "ep2@t", HOOK, NOW)
        before = len(sendgrid.requests)
        alone = AlertDeliverer(ctx.db, ctx.transport, ctx.renderer, None, "a@b.example", "C")
        assert alone.deliver(NOW).requests == 0
        assert len(sendgrid.requests) == before
        with ctx.db.begin() as conn:
            assert queue.pending(conn) == []
    finally:
        ctx.close()


def test_migration_moves_alerts_waiting_in_the_old_state(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        old = {
            "delivery.transport_health": {
                "failures": 4,
                "since": "2026-11-23T09:00:00+00:00",
                "last_error": "HTTP 503",
                "alert": "pending",
                "alert_id": "a" * 32,
            },
            "engagement.complaints": {
                "paused": False,
                "alerted": {"2026-11-23": "alert"},
                "pending": [
                    {
                        "id": "b" * 32,
                        "level": "alert",
                        "paused": False,
                        "queued_at": "2026-11-23T09:30:00+00:00",
                        "day": "2026-11-23",
                        "complaints": 2,
                        "sent": 10,
                        "delivered": 10,
                        "volume": 10,
                        "rate": 0.002,
                    }
                ],
            },
            "campaigns.broken": {
                "campaigns": {
                    "bad": {"since": "2026-11-23T08:00:00", "problems": ["x:1: y"], "alerted": 0},
                    "old": {"since": "2026-11-22T08:00:00", "problems": ["z"], "alerted": 1},
                }
            },
            "delivery.set_aside": {
                "emails": {
                    "c|s|v": {"since": "t", "reason": "HTTP 400", "alerted": False},
                    "d|s|v": {"since": "t", "reason": "HTTP 400", "alerted": True},
                }
            },
        }
        with db.begin() as conn:  # as a database before 2100 holds them
            conn.execute(text("DELETE FROM alembic_version WHERE version_num = '2100'"))
            conn.execute(text("DROP TABLE ops_alerts"))
            for key, value in old.items():
                kvstate.read_locked(conn, key, "{}")
                kvstate.write(conn, key, json.dumps(value))
        db.migrate()
        with db.begin() as conn:
            moved = {a.kind: a.variables for a in queue.pending(conn)}
            left = {key: json.loads(kvstate.read(conn, key) or "{}") for key in old}
    finally:
        db.dispose()
    assert set(moved) == {TRANSPORT_ALERT, COMPLAINT_ALERT, CAMPAIGN_ALERT, MESSAGE_ALERT}
    assert moved[TRANSPORT_ALERT] == {
        "since": "2026-11-23 09:00:00",
        "failures": 4,
        "error": "HTTP 503",
    }
    assert moved[COMPLAINT_ALERT]["rate"] == "0.20%" and moved[COMPLAINT_ALERT]["complaints"] == 2
    assert moved[CAMPAIGN_ALERT]["campaigns"] == "bad"
    assert moved[MESSAGE_ALERT] == {"email": "c/s/v", "reason": "HTTP 400"}
    assert "alert" not in left["delivery.transport_health"]
    assert "pending" not in left["engagement.complaints"]
    assert left["engagement.complaints"]["alerted"] == {"2026-11-23": "alert"}
    assert all("alerted" not in v for v in left["campaigns.broken"]["campaigns"].values())
    assert all("alerted" not in v for v in left["delivery.set_aside"]["emails"].values())
