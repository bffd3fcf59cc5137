"""The SMTP transport against a real aiosmtpd server on loopback."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import cast

from tests.support.approval import approve_library
from tests.support.cli import CLI, write_csv
from tests.support.smtp import Sink, use_smtp


def test_smtp_delivers_multipart_with_headers_over_one_connection(
    sqlite_cli: CLI, smtp: tuple[Sink, int], tmp_path: Path
) -> None:
    sink, port = smtp
    use_smtp(sqlite_cli, port)
    approve_library(sqlite_cli)  # campaign email goes only once a clinician approved it
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
    parts = msg.get_payload()
    assert isinstance(parts, list)
    assert [cast(Message, p).get_content_type() for p in parts] == ["text/plain", "text/html"]
