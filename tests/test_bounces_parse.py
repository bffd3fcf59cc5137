"""What a bounce message says about one of our sends (engagement.bounces, over flufl.bounce):
which send (only from the returned message), whether the relay gave up, and hard or soft."""

from __future__ import annotations

import base64

import pytest

from engagement.bounces import parse
from engagement.events import HARD, SOFT
from tests.support.bounces import REPLY, dsn
from tests.support.cli import CLI

SEND_ID = "0123456789abcdef0123456789abcdef"
ORIGINAL = (
    b"From: Clinic <care@clinic.example>\r\nTo: ann@example.com\r\nSubject: Week 1\r\n"
    b"X-Clinicmail-Send-Id: " + SEND_ID.encode() + b"\r\n\r\nHello\r\n"
)


@pytest.mark.parametrize(
    ("action", "status", "permanent", "klass"),
    [
        ("failed", "5.1.1", True, HARD),  # no such user
        ("failed", "5.1.10", True, HARD),  # null MX
        ("failed", "5.2.1", True, HARD),  # mailbox disabled
        ("failed", "5.2.2", True, SOFT),  # mailbox full: can empty again
        ("failed", "5.7.1", True, SOFT),  # refused by policy: not the address's fault
        ("failed", "4.4.7", True, SOFT),  # the relay gave up on a transient failure
        ("delayed", "4.4.1", False, SOFT),
    ],
)
def test_dsn_status_decides_hard_or_soft(
    action: str, status: str, permanent: bool, klass: str
) -> None:
    bounce = parse(dsn(ORIGINAL, "ann@example.com", action=action, status=status))
    assert bounce is not None
    assert bounce.send_id == SEND_ID
    assert bounce.permanent is permanent and bounce.status == status
    assert bounce.bounce_class == klass


def test_a_send_id_is_taken_only_from_the_returned_message() -> None:
    # A bounce whose own headers name a send id, with no returned message carrying one.
    raw = dsn(
        b"From: x@y\r\nSubject: s\r\n\r\nbody\r\n",
        "ann@example.com",
        action="failed",
        status="5.1.1",
    )
    forged = b"X-Clinicmail-Send-Id: " + SEND_ID.encode() + b"\r\n" + raw
    assert parse(forged) is None


def test_a_base64_returned_part_is_read() -> None:
    raw = dsn(ORIGINAL, "ann@example.com", action="failed", status="5.1.1")
    head = ORIGINAL.partition(b"\r\n\r\n")[0] + b"\r\n"
    encoded = base64.encodebytes(head).replace(b"\n", b"\r\n")
    raw = raw.replace(
        b"Content-Type: text/rfc822-headers\r\n\r\n" + head,
        b"Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: base64\r\n\r\n" + encoded,
    )
    assert b"X-Clinicmail" not in raw.partition(b"text/rfc822-headers")[2]
    bounce = parse(raw)
    assert bounce is not None and bounce.send_id == SEND_ID


def test_not_a_bounce_is_none() -> None:
    assert parse(REPLY) is None
    assert parse(REPLY.replace(b"Thank you", b"X-Clinicmail-Send-Id: " + SEND_ID.encode())) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("imap://u:topsecret@mail.example/INBOX", "only imaps://"),
        ("imaps://mail.example/INBOX", "user and password are missing"),
        ("imaps://u:topsecret@mail.example:99999/INBOX", "invalid port"),
    ],
)
def test_a_bad_bounce_mailbox_is_refused_without_its_password(
    sqlite_cli: CLI, url: str, words: str
) -> None:
    sqlite_cli.env("CLINICMAIL_BOUNCE_MAILBOX", url)
    run = sqlite_cli("tick")
    assert run.code != 0
    assert "CLINICMAIL_BOUNCE_MAILBOX" in run.err and words in run.err
    assert "topsecret" not in run.out + run.err
