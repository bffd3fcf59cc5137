"""SMTP bounces read from a real IMAP server (dovecot, IMAPS on loopback): the email goes out
through a real SMTP server (aiosmtpd), its bounce is delivered into the bounce mailbox by IMAP
APPEND, and the real tick (``clinicmail tick``) or ``serve``'s own job reads it. A hard bounce
suppresses the address as a SendGrid bounce does; a delayed notice suppresses nothing; a message
is read once; a mailbox that cannot be read is an error that stops nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from pathlib import Path

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from sqlalchemy import select

from app.context import AppContext
from app.doctor import provider_findings
from app.service import make_scheduler
from app.settings import load_settings
from engagement.tables import email_events
from subscribers import store
from tests.support.approval import approve_library
from tests.support.bounces import REPLY, dsn, qmail_bounce
from tests.support.cli import CLI, write_csv
from tests.support.imap import PASSWORD, Dovecot
from tests.support.smtp import Sink, use_smtp

NOW = "2026-11-23T10:00:00Z"
WEEK_LATER = "2026-11-30T10:00:00Z"
PEOPLE = ["ann", "ben", "cat", "dan"]


def _sent(sink: Sink) -> dict[str, bytes]:
    """The raw message each person got, by first name."""
    return {rcpts[0].split("@")[0]: raw for _, rcpts, raw in sink.messages}


def _setup(cli: CLI, smtp: tuple[Sink, int], dovecot: Dovecot, tmp_path: Path) -> Sink:
    sink, port = smtp
    use_smtp(cli, port)
    approve_library(cli)
    rows = [f"{p}@example.com,{p.title()},lower_back,Europe/London,yes,," for p in PEOPLE]
    assert cli("subscribers", "import", str(write_csv(tmp_path / "p.csv", rows))).code == 0
    cli.env("SSL_CERT_FILE", str(dovecot.ca_file))  # trust the test server's authority
    cli.env("CLINICMAIL_BOUNCE_MAILBOX", dovecot.url())
    first = cli("tick", "--now", NOW, "--json").json()
    assert first["sent"] == len(PEOPLE) and first["bounces"]["read"] == 0
    return sink


@contextmanager
def _context() -> Iterator[AppContext]:
    ctx = AppContext.from_settings(load_settings())
    try:
        yield ctx
    finally:
        ctx.close()


def _suppressed(email: str) -> bool:
    with _context() as ctx, ctx.db.begin() as conn:
        return store.is_suppressed(conn, email)


def test_hard_bounces_suppress_and_each_message_is_read_once(
    cli: CLI, smtp: tuple[Sink, int], dovecot: Dovecot, tmp_path: Path
) -> None:
    sink = _setup(cli, smtp, dovecot, tmp_path)
    sent = _sent(sink)
    send_id = message_from_bytes(sent["ann"])["X-Clinicmail-Send-Id"]
    assert send_id and "ann" not in send_id  # the header carries an opaque id only
    dan_id = message_from_bytes(sent["dan"])["X-Clinicmail-Send-Id"]
    forged = sent["dan"].replace(dan_id.encode(), b"0" * 32)  # a send id we never made
    dovecot.deliver(
        dsn(sent["ann"], "ann@example.com", action="failed", status="5.1.1"),
        qmail_bounce(sent["ben"], "ben@example.com"),
        dsn(sent["cat"], "cat@example.com", action="delayed", status="4.4.7"),
        REPLY,
        dsn(forged, "dan@example.com", action="failed", status="5.1.1"),
    )
    result = cli("tick", "--now", "2026-11-23T10:10:00Z", "--json")
    assert result.code == 0, result.err
    bounces = result.json()["bounces"]
    assert bounces == {
        "read": 5,
        "hard": 2,
        "soft": 0,
        "delayed": 1,
        "ignored": 2,
        "error": None,
    }
    assert _suppressed("ann@example.com") and _suppressed("ben@example.com")
    assert not _suppressed("cat@example.com") and not _suppressed("dan@example.com")
    with _context() as ctx, ctx.db.begin() as conn:
        stored = conn.execute(
            select(email_events.c.kind, email_events.c.bounce_class, email_events.c.reason)
            .where(email_events.c.provider == "smtp")
            .order_by(email_events.c.id)
        ).all()
    assert [tuple(r) for r in stored] == [
        ("bounced", "hard", "bounce 5.1.1"),
        ("bounced", "hard", "bounce (no status code)"),
        ("deferred", None, "deferred 4.4.7"),
    ]
    # Every message is flagged as read by us; none is marked \Seen for the people who share it.
    flags = dovecot.flags()
    assert len(flags) == 5
    assert all("$ClinicmailDone" in f and "\\Seen" not in f for f in flags), flags
    # Read once: the next pass finds nothing new.
    again = cli("tick", "--now", "2026-11-23T10:20:00Z", "--json").json()["bounces"]
    assert again["read"] == 0 and again["error"] is None
    # A week on, the suppressed addresses get nothing; the others their next email.
    before = len(sink.messages)
    assert cli("tick", "--now", WEEK_LATER, "--json").code == 0
    later = sorted(r[0] for _, r, _ in sink.messages[before:])
    assert "ann@example.com" not in later and "ben@example.com" not in later
    assert "cat@example.com" in later and "dan@example.com" in later


def test_the_service_job_reads_the_mailbox(
    cli: CLI, smtp: tuple[Sink, int], dovecot: Dovecot, tmp_path: Path
) -> None:
    sink = _setup(cli, smtp, dovecot, tmp_path)
    dovecot.deliver(dsn(_sent(sink)["dan"], "dan@example.com", action="failed", status="5.1.1"))
    ran = threading.Event()

    def listen(event: JobExecutionEvent) -> None:
        if event.job_id == "bounces":
            ran.set()

    with _context() as ctx:
        sched = make_scheduler(ctx)
        sched.add_listener(listen, EVENT_JOB_EXECUTED)
        sched.start()  # the bounce job runs at start, beside the tick
        try:
            assert ran.wait(timeout=60), "the bounces job did not run"
        finally:
            sched.shutdown(wait=True)
    assert _suppressed("dan@example.com")
    assert not _suppressed("cat@example.com")


def test_a_broken_mailbox_is_an_error_that_stops_nothing(
    cli: CLI, smtp: tuple[Sink, int], dovecot: Dovecot, tmp_path: Path
) -> None:
    sink = _setup(cli, smtp, dovecot, tmp_path)
    dovecot.deliver(dsn(_sent(sink)["ann"], "ann@example.com", action="failed", status="5.1.1"))
    cli.env("CLINICMAIL_BOUNCE_MAILBOX", dovecot.url(password="wrong-password"))
    result = cli("tick", "--now", WEEK_LATER, "--json")
    assert result.code == 0, result.err
    report = result.json()
    error = report["bounces"]["error"]
    assert "refused the login" in error and "CLINICMAIL_BOUNCE_MAILBOX" in error
    assert "wrong-password" not in result.out + result.err and PASSWORD not in result.err
    assert report["sent"] >= 1  # the tick went on sending
    assert not _suppressed("ann@example.com")
    # A folder that does not exist, and a port where nothing listens, say so the same way.
    cli.env("CLINICMAIL_BOUNCE_MAILBOX", dovecot.url(folder="Bounces"))
    missing = cli("tick", "--now", WEEK_LATER, "--json").json()["bounces"]["error"]
    assert "no folder 'Bounces'" in missing
    # The doctor says so before any send (and logs in to the SMTP server, sending nothing).
    findings = {f.check: f for f in provider_findings(load_settings())}
    assert findings["bounces.mailbox"].status == "fail"
    assert "no folder 'Bounces'" in findings["bounces.mailbox"].summary
    # Fixed: the bounce waiting in the mailbox is read and applied.
    cli.env("CLINICMAIL_BOUNCE_MAILBOX", dovecot.url())
    fixed = cli("tick", "--now", "2026-11-30T10:10:00Z", "--json").json()["bounces"]
    assert fixed["hard"] == 1 and fixed["error"] is None
    assert _suppressed("ann@example.com")
    assert {f.check: f for f in provider_findings(load_settings())}[
        "bounces.mailbox"
    ].status == "pass"
