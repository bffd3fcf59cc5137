"""A fake SendGrid on loopback that the real `sendgrid` client posts to, and the CLI pointed at it
(the `sendgrid` and `sg_cli` fixtures)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support.approval import approve_library
from tests.support.cli import CLI, write_csv

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for its `httpx2` fork


class FakeSendGrid:
    """Records every /v3/mail/send request; answers like SendGrid (202 + X-Message-Id)."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.replies: list[Response] = []
        server.expect_request("/v3/mail/send", method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        self.requests.append(json.loads(request.get_data()))
        self.headers.append(dict(request.headers))
        if self.replies:
            return self.replies.pop(0)
        return Response(status=202, headers={"X-Message-Id": f"msg{len(self.requests)}"})

    @property
    def recipients(self) -> list[str]:
        return [p["to"][0]["email"] for body in self.requests for p in body["personalizations"]]


@pytest.fixture
def sendgrid(httpserver: HTTPServer) -> FakeSendGrid:
    return FakeSendGrid(httpserver)


def use_sendgrid(cli: CLI, httpserver: HTTPServer, api_key: str = "SG.test-key") -> None:
    """Point the CLI's transport at the fake SendGrid that ``httpserver`` serves."""
    cli.env("CLINICMAIL_TRANSPORT", "sendgrid")
    cli.env("SENDGRID_API_KEY", api_key)
    cli.env("CLINICMAIL_SENDGRID_HOST", httpserver.url_for("").rstrip("/"))


@pytest.fixture
def sg_cli(cli: CLI, httpserver: HTTPServer) -> CLI:
    """The CLI sending through the fake SendGrid, its library approved by a clinician (nothing
    from a campaign goes through SendGrid before that: campaigns.review)."""
    use_sendgrid(cli, httpserver)
    approve_library(cli)
    return cli


MONDAY = "2026-11-23T10:00:00Z"
NEXT_MONDAY = "2026-11-30T10:00:00Z"


def send_first_week(sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path) -> dict[str, str]:
    csv = write_csv(
        tmp_path / "people.csv",
        [
            "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
            "bob@example.com,Bob,neck;desk_posture,Europe/London,yes,,",
            "cat@example.com,Cat,lower_back,Europe/London,yes,,",
        ],
    )
    assert sg_cli("subscribers", "import", str(csv)).code == 0
    first = sg_cli("tick", "--now", MONDAY, "--json")
    assert first.code == 0, first.err
    assert first.json()["sent"] == 3
    return {
        p["to"][0]["email"]: p["custom_args"]["send_id"]
        for body in sendgrid.requests
        for p in body["personalizations"]
    }
