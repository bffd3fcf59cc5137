"""Outgoing webhooks: a receiver on loopback that fails twice gets the event once on the third
try, signed so that the ``standardwebhooks`` reference verifier accepts it; the payload names
the person by opaque id only; a receiver failing for days is switched off and staff told."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook

from tests.support.api import bearer, new_key
from tests.support.app import app_for
from tests.support.cli import CLI
from tests.support.delivery import import_people
from tests.support.outbox import outbox_messages
from tests.support.times import iso


def booked(cli: CLI, tmp_path: Path) -> str:
    """Ann, imported and booked through the API; returns her opaque id."""
    import_people(cli, tmp_path, ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    key = new_key(cli, "booking", "events:write", "subscribers:read")
    with app_for(cli) as (client, _ctx):
        pid = client.post(
            "/api/v1/subscribers/lookup", json={"email": "ann@example.com"}, headers=bearer(key)
        ).json()["id"]
        answer = client.post(
            "/api/v1/events",
            json={"email": "ann@example.com", "type": "booked"},
            headers=bearer(key),
        )
        assert answer.status_code == 202
    return str(pid)


def deliver(cli: CLI, at: datetime) -> dict[str, int]:
    run = cli("webhooks", "deliver", "--now", iso(at), "--json")
    assert run.code == 0, run.err
    result: dict[str, int] = run.json()
    return result


def test_a_receiver_failing_twice_gets_the_event_once_on_the_third_try_signed(
    cli: CLI, tmp_path: Path, httpserver: HTTPServer
) -> None:
    for status in (500, 503, 200):
        httpserver.expect_ordered_request("/hook", method="POST").respond_with_data(
            "", status=status
        )
    added = cli("webhooks", "add", httpserver.url_for("/hook"), "--events", "goal.reached")
    assert added.code == 0, added.err
    secret = added.out.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    pid = booked(cli, tmp_path)
    start = datetime.now(UTC) + timedelta(minutes=1)
    assert deliver(cli, start)["failed_attempts"] == 1
    assert deliver(cli, start)["failed_attempts"] == 0  # waits out its back-off
    assert deliver(cli, start + timedelta(seconds=5))["failed_attempts"] == 1
    assert deliver(cli, start + timedelta(seconds=14))["failed_attempts"] == 0  # 10 s wait
    assert deliver(cli, start + timedelta(seconds=15))["delivered"] == 1
    assert deliver(cli, start + timedelta(hours=1)) == {
        "delivered": 0,
        "failed_attempts": 0,
        "disabled": 0,
    }
    httpserver.check_assertions()
    attempts = [request for request, _response in httpserver.log]
    assert len(attempts) == 3
    assert len({r.headers["webhook-id"] for r in attempts}) == 1  # one event, three tries
    last = attempts[-1]
    body = last.get_data()
    payload = Webhook(secret).verify(body, dict(last.headers))
    assert payload["type"] == "goal.reached"
    assert payload["data"] == {
        "subscriber_id": pid,
        "goal": "booked",
        "campaign_ids": ["spasm-education"],
    }
    assert b"ann" not in body.lower()  # opaque ids only
    listed = json.loads(cli("webhooks", "list", "--json").out)
    assert listed[0]["last_status_code"] == 200 and listed[0]["active"] is True
    history = json.loads(cli("webhooks", "deliveries", listed[0]["id"], "--json").out)
    assert history[0]["status"] == "delivered" and history[0]["attempts"] == 3


def test_a_receiver_failing_for_days_is_switched_off_and_staff_are_told(
    cli: CLI, tmp_path: Path, httpserver: HTTPServer, db_url: str
) -> None:
    httpserver.expect_request("/down").respond_with_data("", status=502)
    cli.env("CLINICMAIL_STAFF_EMAIL", "ops@clinic.example")
    added = cli("webhooks", "add", httpserver.url_for("/down"), "--events", "all")
    assert added.code == 0
    booked(cli, tmp_path)
    start = datetime.now(UTC) + timedelta(minutes=1)
    assert deliver(cli, start)["failed_attempts"] == 1
    assert deliver(cli, start + timedelta(days=3, minutes=1))["disabled"] == 1
    listed = json.loads(cli("webhooks", "list", "--json").out)
    assert listed[0]["active"] is False and "failed" in listed[0]["disabled_reason"]
    alerts = [m for m in outbox_messages(db_url) if m[0] == "ops@clinic.example"]
    assert any("webhook" in subject for _to, subject, _text in alerts)
    # Nothing more is attempted while it is off; enabling and replaying sends it again.
    assert deliver(cli, start + timedelta(days=4))["failed_attempts"] == 0
    assert cli("webhooks", "enable", listed[0]["id"]).code == 0
    history = json.loads(cli("webhooks", "deliveries", listed[0]["id"], "--json").out)
    assert history[0]["status"] == "failed"
    assert cli("webhooks", "replay", str(history[0]["id"])).code == 0
    assert deliver(cli, start + timedelta(days=4))["failed_attempts"] == 1


def test_unknown_events_and_bad_urls_are_one_line_errors(cli: CLI) -> None:
    short = cli("webhooks", "add", "https://example.test/h", "--events", "red_flag,goal_reached")
    assert short.code == 0 and "subscriber.red_flag, goal.reached" in short.out
    bad = cli("webhooks", "add", "https://example.test/h", "--events", "everything")
    assert bad.code == 1 and len(bad.err.strip().splitlines()) == 1 and "everything" in bad.err
    url = cli("webhooks", "add", "ftp://example.test/h", "--events", "all")
    assert url.code == 1 and len(url.err.strip().splitlines()) == 1
    gone = cli("webhooks", "remove", "whe_0000000000000000")
    assert gone.code == 1 and len(gone.err.strip().splitlines()) == 1
