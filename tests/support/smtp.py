"""A real SMTP server (aiosmtpd) on loopback that refuses or defers some recipients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.cli import CLI
from tests.support.serve import free_port


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
    port = free_port()
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def use_smtp(cli: CLI, port: int) -> None:
    """Point the CLI's transport at the SMTP server on ``port``."""
    cli.env("CLINICMAIL_TRANSPORT", "smtp")
    cli.env("CLINICMAIL_SMTP_URL", f"smtp://127.0.0.1:{port}")
