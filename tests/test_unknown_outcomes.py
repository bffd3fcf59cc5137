"""A timeout after the request left is `unknown`: settled by a webhook event, never resent blindly."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.context import AppContext
from app.http import create_app
from app.settings import load_settings
from tests.support.approval import approve_library
from tests.support.cli import CLI, write_csv
from tests.support.sendgrid import use_sendgrid
from tests.support.signer import Signer


class Stall:
    """The fake SendGrid holds its first answer until the test lets it go: the request has
    arrived, the answer never comes in time (the client's timeout is 1 s)."""

    def __init__(self) -> None:
        self.held = True
        self._go = threading.Event()
        self._answered = threading.Event()

    def hold(self) -> None:
        if self.held:
            self.held = False
            self._go.wait(timeout=60)
            self._answered.set()

    def let_go(self) -> None:
        """Let the held answer go and wait until the fake has sent it (it serves one at a
        time, so the next request would queue behind it)."""
        self._go.set()
        assert self._answered.wait(timeout=60)


def _setup(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path, stall: Stall
) -> list[dict[str, object]]:
    bodies: list[dict[str, object]] = []

    def handler(request: Request) -> Response:
        bodies.append(json.loads(request.get_data()))
        stall.hold()
        return Response(status=202, headers={"X-Message-Id": "m1"})

    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_handler(handler)
    use_sendgrid(cli, httpserver, "SG.x")
    approve_library(cli)  # campaign email goes only once a clinician approved it
    cli.env("CLINICMAIL_SENDGRID_TIMEOUT", "1")
    write_csv(tmp_path / "p.csv", ["una@example.com,Una,lower_back,Europe/London,yes,,"])
    cli("subscribers", "import", str(tmp_path / "p.csv"))
    return bodies


def test_unknown_is_settled_by_a_webhook_event(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> None:
    stall = Stall()
    bodies = _setup(cli, httpserver, tmp_path, stall)
    first = cli("tick", "--now", "2026-11-23T10:00:00Z", "--json").json()
    stall.let_go()
    assert first["unknown"] == 1
    assert first["sent"] == 0
    # Later ticks do not resend while the outcome is unknown.
    assert cli("tick", "--now", "2026-11-23T11:00:00Z", "--json").json()["sent"] == 0
    assert len(bodies) == 1
    send_id = bodies[0]["personalizations"][0]["custom_args"]["send_id"]  # type: ignore[index]
    signer = Signer()
    cli.env("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    ctx = AppContext.from_settings(load_settings())
    try:
        with TestClient(create_app(ctx)) as client:
            event = [
                {
                    "email": "una@example.com",
                    "event": "processed",
                    "sg_event_id": "e1",
                    "sg_message_id": "m1.filter",
                    "timestamp": 1795428000,
                    "send_id": send_id,
                }
            ]
            body = json.dumps(event).encode("utf-8")
            posted = signer.post(client, body)
            assert posted.status_code == 200
    finally:
        ctx.close()
    settled = cli("tick", "--now", "2026-11-23T12:00:00Z", "--json").json()
    assert settled["settled"] == 1
    # Well past the reconciliation window: still exactly one request.
    cli("tick", "--now", "2026-11-23T19:00:00Z")
    assert len(bodies) == 1


def test_unknown_without_any_event_is_resent_after_the_window(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> None:
    stall = Stall()
    bodies = _setup(cli, httpserver, tmp_path, stall)
    assert cli("tick", "--now", "2026-11-23T10:00:00Z", "--json").json()["unknown"] == 1
    stall.let_go()
    assert cli("tick", "--now", "2026-11-23T15:59:00Z", "--json").json()["sent"] == 0
    later = cli("tick", "--now", "2026-11-23T16:01:00Z", "--json").json()
    assert later["released"] == 1
    assert later["sent"] == 1
    assert len(bodies) == 2
