"""The SMTP transport against a real aiosmtpd server on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import CLI, write_csv


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.sessions: set[int] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 no such user"
        if address.startswith("busy"):
            return "451 4.3.0 try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sessions.add(id(session))
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def test_smtp_delivers_multipart_with_headers_over_one_connection(
    sqlite_cli: CLI, smtp: tuple[Sink, int], tmp_path: Path
) -> None:
    sink, port = smtp
    sqlite_cli.env("CLINICMAIL_TRANSPORT", "smtp")
    sqlite_cli.env("CLINICMAIL_SMTP_URL", f"smtp://127.0.0.1:{port}")
    write_csv(
        tmp_path / "p.csv",
        [
            "ann@example.com,Ann,lower_back,Europe/London,yes,,",
            "ben@example.com,Ben,lower_back,Europe/London,yes,,",
            "refused@example.com,Rex,lower_back,Europe/London,yes,,",
            "busy@example.com,Bea,lower_back,Europe/London,yes,,",
        ],
    )
    sqlite_cli("subscribers", "import", str(tmp_path / "p.csv"))
    result = sqlite_cli("tick", "--now", "2026-11-23T10:00:00Z", "--json").json()
    assert result["sent"] == 2
    assert result["failed"] == 1  # 550: permanent
    assert result["retried"] == 1  # 451: try again later
    assert sorted(r for _, rcpts, _ in sink.messages for r in rcpts) == [
        "ann@example.com",
        "ben@example.com",
    ]
    assert len(sink.sessions) == 1  # the connection is reused within a batch
    msg = message_from_bytes(sink.messages[0][2])
    assert msg["List-Unsubscribe"].startswith("<https://mail.clinic.example/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.is_multipart()
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]
