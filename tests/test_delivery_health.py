"""Transport health: repeated refusals open a shared circuit breaker (stored in the database, so
every process sees it), queue one staff alert and log one ERROR line; the first success clears it.
Driven through `clinicmail tick` against a fake SendGrid that fails, then recovers."""

from __future__ import annotations

import json
import logging
import socket
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from alerts import queue as alerts
from app.context import AppContext
from app.settings import load_settings
from campaigns.ledger import sends
from scheduler.breaker import TransportBreaker
from scheduler.tick import TickReport, make_dispatcher, run_tick
from storage import Database
from templates.system import TRANSPORT_ALERT
from tests.support.approval import approve_library
from tests.support.cli import CLI
from tests.support.delivery import import_people, londoners
from tests.support.sendgrid import use_sendgrid

STAFF = "staff@clinic.example"


class FlakySendGrid:
    def __init__(self, server: HTTPServer, status: int) -> None:
        self.status = status
        self.failing = True
        self.bodies: list[dict[str, Any]] = []
        self.failed = 0
        server.expect_request("/v3/mail/send", method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        if self.failing:
            self.failed += 1
            return Response('{"errors":[{"message":"try later"}]}', status=self.status)
        self.bodies.append(json.loads(request.get_data()))
        return Response(status=202, headers={"X-Message-Id": f"m{len(self.bodies)}"})

    def to(self, address: str) -> list[dict[str, Any]]:
        return [
            b for b in self.bodies for p in b["personalizations"] if p["to"][0]["email"] == address
        ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pending_alerts() -> list[str]:
    db = Database(load_settings().database_url)
    try:
        with db.begin() as conn:
            return [a.kind for a in alerts.pending(conn)]
    finally:
        db.dispose()


def _state() -> Any:
    settings = load_settings()
    db = Database(settings.database_url)
    try:
        return TransportBreaker(db, "sendgrid", STAFF).state()
    finally:
        db.dispose()


@pytest.mark.parametrize("failure", ["500", "429", "refused"])
def test_failing_transport_backs_off_alerts_once_and_recovers(
    cli: CLI,
    httpserver: HTTPServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    caplog.set_level(logging.INFO, logger="clinicmail")
    fake = FlakySendGrid(httpserver, 429 if failure == "429" else 500)
    good_host = httpserver.url_for("").rstrip("/")
    bad_host = f"http://127.0.0.1:{_closed_port()}" if failure == "refused" else good_host
    cli.env("CLINICMAIL_TRANSPORT", "sendgrid")
    cli.env("SENDGRID_API_KEY", "SG.health")
    cli.env("CLINICMAIL_SENDGRID_HOST", bad_host)
    cli.env("CLINICMAIL_STAFF_EMAIL", STAFF)
    approve_library(cli)  # campaign email goes only once a clinician approved it
    import_people(cli, tmp_path, ["pia@example.com,Pia,lower_back;sciatica,Europe/London,yes,,"])

    def tick(at: str) -> dict[str, Any]:
        run = cli("tick", "--now", f"2026-11-23T{at}Z", "--json")
        assert run.code == 0, run.err
        result: dict[str, Any] = run.json()
        return result

    # Two refusals: retried, not yet a pattern.
    for at in ("10:00:00", "10:05:00"):
        result = tick(at)
        assert result["retried"] == 1 and result["backed_off"] is False
    # The third in a row opens the breaker: one minute's back-off, stored for every process.
    third = tick("10:10:00")
    assert third["retried"] == 1 and third["backed_off"] is True
    assert third["backoff_until"] == "2026-11-23T10:11:00+00:00"
    assert _pending_alerts() == [TRANSPORT_ALERT]
    skipped = tick("10:10:30")
    assert skipped["backed_off"] is True and skipped["requests"] == 0
    # After the back-off the first request is a probe; it fails, so the back-off doubles.
    probe = tick("10:20:00")
    assert probe["backed_off"] is True
    assert probe["backoff_until"] == "2026-11-23T10:22:00+00:00"
    assert tick("10:21:00")["requests"] == 0

    # The provider recovers. The queued alert goes first; its success clears the breaker.
    fake.failing = False
    cli.env("CLINICMAIL_SENDGRID_HOST", good_host)
    recovered = tick("10:23:00")
    assert recovered["backed_off"] is False
    assert _state().clean
    later = tick("10:40:00")
    assert later["sent"] == 1 and later["backed_off"] is False
    assert len(fake.to("pia@example.com")) == 1
    assert tick("11:00:00")["requests"] == 0

    # Exactly one alert, to staff only, saying nothing about any subscriber.
    alerts = fake.to(STAFF)
    assert len(alerts) == 1
    alert = alerts[0]
    assert len(alert["personalizations"]) == 1
    assert alert["subject"] == "Action needed: email delivery is failing"
    text = json.dumps(alert).lower()
    assert "sendgrid" in text
    for personal in ("pia", "example.com", "sciatica", "lower_back"):
        assert personal not in text
    # One ERROR line for the incident, naming no one.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "sendgrid is failing" in errors[0].getMessage()
    assert "@" not in errors[0].getMessage()


def test_a_single_failure_after_recovery_does_not_back_off(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> None:
    fake = FlakySendGrid(httpserver, 500)
    use_sendgrid(cli, httpserver, "SG.health")
    approve_library(cli)  # campaign email goes only once a clinician approved it
    import_people(cli, tmp_path, londoners("p", 2))
    for at in ("10:00", "10:05"):
        assert cli("tick", "--now", f"2026-11-23T{at}:00Z", "--json").json()["retried"] == 2
    fake.failing = False
    assert cli("tick", "--now", "2026-11-23T10:10:00Z", "--json").json()["sent"] == 2
    # The count of consecutive failures started again from zero.
    assert _state().clean
    # Staff (by default the from address) heard nothing: the breaker never opened.
    assert fake.to("care@clinic.example") == []


def test_breaker_stops_a_tick_midway_and_hands_back_what_was_not_sent(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> None:
    fake = FlakySendGrid(httpserver, 503)
    use_sendgrid(cli, httpserver, "SG.health")
    approve_library(cli)  # campaign email goes only once a clinician approved it
    import_people(cli, tmp_path, londoners("m", 5))

    def tick(at: datetime) -> TickReport:
        ctx = AppContext.from_settings(load_settings())
        try:
            dispatcher = make_dispatcher(ctx)
            dispatcher.per_recipient = True  # one request per email: five requests to make
            return run_tick(ctx, at, dispatcher=dispatcher)
        finally:
            ctx.close()

    first = tick(datetime(2026, 11, 23, 10, tzinfo=UTC)).delivery
    # Three refused requests open the breaker; the two emails never tried go back untouched.
    assert (first.requests, first.retried, first.backed_off) == (3, 3, True)
    assert fake.failed == 3
    ctx = AppContext.from_settings(load_settings())
    try:
        with ctx.db.begin() as conn:
            ledger = Counter(
                (status, attempts)
                for status, attempts in conn.execute(select(sends.c.status, sends.c.attempts))
            )
    finally:
        ctx.close()
    assert ledger == Counter({("retry", 1): 3, ("pending", 0): 2})
    fake.failing = False
    later = tick(datetime(2026, 11, 23, 10, 5, tzinfo=UTC)).delivery
    assert later.sent == 5 and not later.backed_off
    # Besides the staff alert (to the from address, the default staff address) all five went.
    assert sorted(
        p["to"][0]["email"]
        for b in fake.bodies
        for p in b["personalizations"]
        if p["to"][0]["email"] != "care@clinic.example"
    ) == [f"m{i}@example.com" for i in range(5)]
    assert len(fake.to("care@clinic.example")) == 1
