"""SMTP over TLS only: `smtp://` requires STARTTLS before any credential or message (a loopback
host excepted, unless `?tls=required`), `smtps://` is TLS from the first byte, and `?tls=off` is
the one documented way to send in clear (logged at WARNING). Against real aiosmtpd servers on
loopback, with a certificate authority made by the test (trustme)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.support.approval import approve_library
from tests.support.cli import CLI, write_csv
from tests.support.serve import free_port

NOW = "2026-11-23T10:00:00Z"


class Relay:
    """Records each message, whether its session was encrypted, and every AUTH attempt."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bool]] = []
        self.logins: list[tuple[str, bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), _encrypted(server)))
        return "250 Message accepted"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.logins.append((mechanism, _encrypted(server)))
        return AuthResult(success=True)


def _encrypted(server: Any) -> bool:
    """Is this session's connection TLS (upgraded by STARTTLS, or so from the start)?"""
    return server.transport.get_extra_info("ssl_object") is not None


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, sqlite_cli: CLI) -> CLI:
    """The CLI trusting the test's authority (OpenSSL reads SSL_CERT_FILE)."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    sqlite_cli.env("SSL_CERT_FILE", str(bundle))
    write_csv(tmp_path / "p.csv", ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    assert sqlite_cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    approve_library(sqlite_cli)  # real transports send only what a clinician approved
    sqlite_cli.env("CLINICMAIL_TRANSPORT", "smtp")
    return sqlite_cli


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def _relay(**options: Any) -> Iterator[tuple[Relay, int]]:
    relay, port = Relay(), free_port()
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=port,
        authenticator=relay.authenticate,
        auth_require_tls=False,  # a careless server: it would take a password in clear
        **options,
    )
    controller.start()
    try:
        yield relay, port
    finally:
        controller.stop()


@pytest.fixture
def starttls_relay(ca: trustme.CA) -> Iterator[tuple[Relay, int]]:
    yield from _relay(tls_context=_server_context(ca))


@pytest.fixture
def plain_relay() -> Iterator[tuple[Relay, int]]:
    yield from _relay()


@pytest.fixture
def implicit_relay(ca: trustme.CA) -> Iterator[tuple[Relay, int]]:
    yield from _relay(ssl_context=_server_context(ca))


def _tick(cli: CLI, now: str = NOW) -> dict[str, Any]:
    run = cli("tick", "--now", now, "--json")
    assert run.code == 0, run.err
    return dict(run.json())


def _refused_tick(cli: CLI, now: str = NOW) -> str:
    """TLS that cannot be had is the configuration's fault: sending pauses and the tick exits
    non-zero with one line saying what to fix (nothing is marked failed)."""
    run = cli("tick", "--now", now, "--json")
    assert run.code == 1, run.out
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err
    return run.err


def test_starttls_comes_before_the_password_and_the_message(
    trusted: CLI, starttls_relay: tuple[Relay, int]
) -> None:
    relay, port = starttls_relay
    trusted.env("CLINICMAIL_SMTP_URL", f"smtp://clinic:s3cret@127.0.0.1:{port}?tls=required")
    assert _tick(trusted)["sent"] == 1
    assert relay.messages == [(["ann@example.com"], True)]
    assert relay.logins and all(encrypted for _, encrypted in relay.logins)


def test_a_server_without_starttls_gets_no_password_and_no_message(
    trusted: CLI, plain_relay: tuple[Relay, int], caplog: pytest.LogCaptureFixture
) -> None:
    relay, port = plain_relay
    trusted.env("CLINICMAIL_SMTP_URL", f"smtp://clinic:s3cret@127.0.0.1:{port}?tls=required")
    assert "STARTTLS" in _refused_tick(trusted)
    assert relay.messages == [] and relay.logins == []
    failed = trusted("sends", "list", "--status", "failed", "--json")
    assert failed.code == 0 and failed.json() == []  # waiting, not lost
    # Once the URL says what the operator decided, the same server gets the email.
    with caplog.at_level(logging.WARNING, logger="clinicmail.smtp"):
        trusted.env("CLINICMAIL_SMTP_URL", f"smtp://clinic:s3cret@127.0.0.1:{port}?tls=off")
        assert _tick(trusted, "2026-11-23T12:00:00Z")["sent"] >= 1
    # The staff alert about the pause goes first, then the email that waited.
    assert relay.messages[-1] == (["ann@example.com"], False)
    assert all(not encrypted for _, encrypted in relay.messages)
    warned = [r.getMessage() for r in caplog.records if r.name == "clinicmail.smtp"]
    assert warned and "without TLS" in warned[0] and "s3cret" not in warned[0]


def test_a_certificate_that_does_not_verify_is_refused(
    sqlite_cli: CLI, starttls_relay: tuple[Relay, int], tmp_path: Path
) -> None:
    relay, port = starttls_relay  # signed by the test's authority, which is not trusted here
    write_csv(tmp_path / "p.csv", ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    assert sqlite_cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    approve_library(sqlite_cli)
    sqlite_cli.env("CLINICMAIL_TRANSPORT", "smtp")
    sqlite_cli.env("CLINICMAIL_SMTP_URL", f"smtp://clinic:s3cret@127.0.0.1:{port}?tls=required")
    assert "certificate" in _refused_tick(sqlite_cli)
    assert relay.messages == [] and relay.logins == []


def test_smtps_is_tls_from_the_first_byte(trusted: CLI, implicit_relay: tuple[Relay, int]) -> None:
    relay, port = implicit_relay
    trusted.env("CLINICMAIL_SMTP_URL", f"smtps://clinic:s3cret@127.0.0.1:{port}")
    assert _tick(trusted)["sent"] == 1
    assert relay.messages == [(["ann@example.com"], True)]
    assert relay.logins and all(encrypted for _, encrypted in relay.logins)


def test_a_loopback_relay_may_go_without_tls(trusted: CLI, plain_relay: tuple[Relay, int]) -> None:
    relay, port = plain_relay
    trusted.env("CLINICMAIL_SMTP_URL", f"smtp://127.0.0.1:{port}")
    assert _tick(trusted)["sent"] == 1
    assert relay.messages == [(["ann@example.com"], False)]


@pytest.mark.parametrize("url", ["smtp://h.example:587?tls=maybe", "smtps://h.example:465?tls=off"])
def test_a_bad_tls_option_is_one_line_at_start(sqlite_cli: CLI, url: str) -> None:
    sqlite_cli.env("CLINICMAIL_TRANSPORT", "smtp")
    sqlite_cli.env("CLINICMAIL_SMTP_URL", url)
    run = sqlite_cli("tick", "--json")
    assert run.code == 1
    assert "CLINICMAIL_SMTP_URL" in run.err and "tls" in run.err
    assert len(run.err.strip().splitlines()) == 1
