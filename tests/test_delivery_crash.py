"""Crash safety: a sending `clinicmail tick` process killed with SIGKILL at each dangerous point.

The sender is a real subprocess with the sendgrid transport, posting through the real `sendgrid`
client to a fake SendGrid on loopback. It dies

- after claiming, before any request (test-only hook ``CLINICMAIL_CRASH_AT=after-claim``);
- while its request is at the provider and no answer has come (the fake holds the request and
  the test kills the process from outside);
- after the 202 came back, before the outcome is committed (``CLINICMAIL_CRASH_AT=after-response``).

Then ticks run again at later ``--now`` values. No email is lost; nothing goes out twice except
sends whose fate is unknown, and those are settled by a webhook event carrying their send_id, or
(with no event at all) sent again only after the reconciliation window.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from app.context import AppContext
from app.http import create_app
from app.settings import load_settings
from campaigns.ledger import sends
from tests.support.approval import approve_library
from tests.support.cli import CLI
from tests.support.delivery import import_people
from tests.support.sendgrid import use_sendgrid
from tests.support.signer import Signer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXE = str(Path(sys.executable).with_name("clinicmail"))
PEOPLE = [f"p{i}@example.com" for i in range(5)]
T0 = "2026-11-23T10:00:00Z"  # a Monday, 10:00 in London: inside everyone's window


class HoldingSendGrid:
    """Records every request; can hold the first one (the request arrived, no answer yet)."""

    def __init__(self, server: HTTPServer, *, hold_first: bool = False) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.hold_first = hold_first
        self.arrived = threading.Event()
        self.release = threading.Event()
        server.expect_request("/v3/mail/send", method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        self.bodies.append(json.loads(request.get_data()))
        if self.hold_first and len(self.bodies) == 1:
            self.arrived.set()
            self.release.wait(30)
        return Response(status=202, headers={"X-Message-Id": f"m{len(self.bodies)}"})

    def per_recipient(self) -> Counter[str]:
        return Counter(p["to"][0]["email"] for b in self.bodies for p in b["personalizations"])

    def send_ids(self) -> dict[str, str]:
        return {
            p["custom_args"]["send_id"]: p["to"][0]["email"]
            for b in self.bodies
            for p in b["personalizations"]
        }


def _setup(cli: CLI, httpserver: HTTPServer, tmp_path: Path) -> dict[str, str]:
    use_sendgrid(cli, httpserver, "SG.crash")
    approve_library(cli)  # campaign email goes only once a clinician approved it
    rows = [f"{e},P,lower_back,Europe/London,yes,," for e in PEOPLE]
    import_people(cli, tmp_path, rows)
    return dict(os.environ)  # the CLI fixture's settings, for the sending subprocess too


def _sender(env: dict[str, str], tmp_path: Path, crash_at: str | None) -> subprocess.Popen[str]:
    env = dict(env)
    if crash_at:
        env["CLINICMAIL_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [EXE, "tick", "--now", T0, "--json"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _statuses() -> Counter[str]:
    ctx = AppContext.from_settings(load_settings())
    try:
        with ctx.db.begin() as conn:
            return Counter(r[0] for r in conn.execute(select(sends.c.status)))
    finally:
        ctx.close()


def _post_events(events: list[dict[str, Any]]) -> None:
    signer = Signer()
    ctx = AppContext.from_settings(
        load_settings(CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY=signer.public_key)
    )
    try:
        with TestClient(create_app(ctx)) as client:
            body = json.dumps(events).encode("utf-8")
            answer = signer.post(client, body)
            assert answer.status_code == 200
    finally:
        ctx.close()


def test_killed_after_claim_loses_nothing_and_sends_once(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> None:
    fake = HoldingSendGrid(httpserver)
    env = _setup(cli, httpserver, tmp_path)
    proc = _sender(env, tmp_path, "after-claim")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    assert fake.bodies == []
    assert _statuses() == Counter({"claimed": len(PEOPLE)})
    # While the dead process's lease lasts, nobody else takes its claims ...
    assert cli("tick", "--now", "2026-11-23T10:05:00Z", "--json").json()["sent"] == 0
    # ... once it runs out the claims are safe to take again: no request ever left.
    after = cli("tick", "--now", "2026-11-23T10:11:00Z", "--json").json()
    assert after["sent"] == len(PEOPLE) and after["unknown"] == 0
    assert cli("tick", "--now", "2026-11-23T18:00:00Z", "--json").json()["sent"] == 0
    assert fake.per_recipient() == Counter(dict.fromkeys(PEOPLE, 1))
    assert _statuses() == Counter({"sent": len(PEOPLE)})


@pytest.fixture(params=["in-flight", "after-response"])
def crashed(
    request: pytest.FixtureRequest, cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> HoldingSendGrid:
    """The sender killed once its first request reached the fake SendGrid ("in-flight") or
    once the answer came back ("after-response"): every send left, none recorded as sent."""
    point = request.param
    fake = HoldingSendGrid(httpserver, hold_first=point == "in-flight")
    env = _setup(cli, httpserver, tmp_path)
    if point == "in-flight":
        proc = _sender(env, tmp_path, None)
        assert fake.arrived.wait(60), "the request never reached the fake SendGrid"
        proc.send_signal(signal.SIGKILL)  # the request is at the provider; no answer yet
        proc.communicate(timeout=60)
        fake.release.set()
    else:
        proc = _sender(env, tmp_path, "after-response")
        proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert fake.per_recipient() == Counter(dict.fromkeys(PEOPLE, 1))
    assert _statuses() == Counter({"sending": len(PEOPLE)})
    return fake


def test_killed_after_the_request_left_is_settled_by_events_not_resent(
    cli: CLI, crashed: HoldingSendGrid
) -> None:
    # The lease runs out: the request may have left, so the sends become unknown, not resent.
    restart = cli("tick", "--now", "2026-11-23T10:11:00Z", "--json").json()
    assert restart["sent"] == 0
    assert _statuses() == Counter({"unknown": len(PEOPLE)})
    # SendGrid's events for those messages carry our send_id in custom_args.
    _post_events(
        [
            {
                "email": email,
                "event": "delivered",
                "sg_event_id": f"crash-{n}",
                "sg_message_id": f"m1.filter{n}",
                "timestamp": 1795428000 + n,
                "send_id": send_id,
            }
            for n, (send_id, email) in enumerate(crashed.send_ids().items())
        ]
    )
    settled = cli("tick", "--now", "2026-11-23T10:12:00Z", "--json").json()
    assert settled["settled"] == len(PEOPLE) and settled["sent"] == 0
    # Far past the reconciliation window: still exactly one request per person.
    assert cli("tick", "--now", "2026-11-23T19:00:00Z", "--json").json()["sent"] == 0
    assert crashed.per_recipient() == Counter(dict.fromkeys(PEOPLE, 1))
    assert _statuses() == Counter({"sent": len(PEOPLE)})


def test_killed_after_the_request_left_without_events_resends_only_after_the_window(
    cli: CLI, crashed: HoldingSendGrid
) -> None:
    assert cli("tick", "--now", "2026-11-23T10:11:00Z", "--json").json()["sent"] == 0
    # Recovered at 10:11 with a six-hour window: nothing again before 16:11.
    quiet = cli("tick", "--now", "2026-11-23T16:10:00Z", "--json").json()
    assert quiet["sent"] == 0 and quiet["released"] == 0
    assert crashed.per_recipient() == Counter(dict.fromkeys(PEOPLE, 1))
    again = cli("tick", "--now", "2026-11-23T16:12:00Z", "--json").json()
    assert again["released"] == len(PEOPLE) and again["sent"] == len(PEOPLE)
    # The documented trade-off: with no word from the provider, a duplicate beats a lost email.
    assert crashed.per_recipient() == Counter(dict.fromkeys(PEOPLE, 2))
    assert cli("tick", "--now", "2026-11-23T19:00:00Z", "--json").json()["sent"] == 0
    assert _statuses() == Counter({"sent": len(PEOPLE)})
