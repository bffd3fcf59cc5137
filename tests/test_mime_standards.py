"""Every message the outbox and SMTP transports produce, checked line by line against the
standards receivers enforce (RFC 5322 line and zone rules, RFC 2045 encoded-line length, one
MIME-Version, RFC 8058 one-click unsubscribe on list mail only: campaign email and the system
email that carries an unsubscribe link, never the confirmation email or email to staff).

The same messages also pass the check ``clinicmail doctor`` runs on its sample
(:func:`deliverability.message.message_problems`), and both catch each planted fault.

The library is enumerated, never named: every step and variant of every campaign the catalog
holds, a one-off broadcast with a variant, every system email and both staff alerts about the
service go through the real dispatcher and the real transport (the outbox table, or a real
aiosmtpd server on loopback).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from alerts import queue as alerts
from app.context import AppContext
from app.settings import load_settings
from campaigns import ledger as sends_ledger
from campaigns import versions
from campaigns.ledger import CAMPAIGN, SYSTEM, SYSTEM_CAMPAIGN, sends
from campaigns.loader import Problem
from campaigns.review import Actor
from deliverability.message import message_problems
from engagement import complaints, followups
from outgoing import queue as webhook_queue
from outgoing.posting import deliver_due
from outgoing.tables import webhook_endpoints
from scheduler import setaside
from scheduler.alerting import deliverer
from scheduler.breaker import TransportBreaker
from scheduler.followups import remind_overdue
from scheduler.library import record_broken
from scheduler.review_notices import send_review_notices, warn_review_due
from scheduler.tick import run_tick
from staff import accounts, audit
from subscribers.tables import subscribers
from templates.system import OPS_EMAILS, SYSTEM_EMAILS
from tests.support.approval import approve_library, broadcast_approved
from tests.support.backends import sqlite_only
from tests.support.cli import CLI
from tests.support.delivery import import_people
from tests.support.newsletter import news_files
from tests.support.smtp import Sink, use_smtp
from transports import Outcome, Result
from transports.tables import outbox

MONDAY = datetime(2026, 11, 23, 10, tzinfo=UTC)  # inside the default send window in London
FROM_DOMAIN = "clinic.example"  # the CLI fixture sends from care@clinic.example
STAFF = "staff@clinic.example"
# Emails to staff or to someone not yet subscribed: no unsubscribe headers.
NO_LIST_HEADERS = {"confirm", "staff-alert", "checkin-staff", *OPS_EMAILS}
MSGID = re.compile(r"^<[^<>@\s]+@([^<>@\s]+)>$")
BROADCAST = "broadcast.clinic-news"  # scheduled with --id clinic-news


@dataclass(frozen=True)
class Made:
    """One produced message and what it was meant to be."""

    label: str  # "campaign/step/variant" or "system/<name>"
    campaign: bool
    list_headers: bool
    raw: bytes


def standards_problems(made: Made) -> list[str]:
    """Every way ``made.raw`` breaks the rules in the module docstring (empty when it keeps them)."""
    problems: list[str] = []
    raw = made.raw
    head, sep, _body = raw.partition(b"\r\n\r\n")
    if not sep:
        return ["no blank CRLF line between the headers and the body"]
    if re.search(rb"(?<!\r)\n", raw):
        problems.append("a bare LF line ending (SMTP needs CRLF)")
    for n, header_line in enumerate(head.split(b"\r\n"), 1):
        if len(header_line) > 998:
            problems.append(
                f"header line {n} has {len(header_line)} characters (RFC 5322: 998 at most)"
            )
    mime_versions = len(re.findall(rb"(?im)^MIME-Version:", raw))
    if mime_versions != 1:
        problems.append(f"{mime_versions} MIME-Version headers (exactly one, at the top)")

    msg = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(msg, EmailMessage)
    match = MSGID.match(str(msg["Message-ID"] or ""))
    if match is None or match[1] != FROM_DOMAIN:
        problems.append(f"Message-ID {msg['Message-ID']!r} is not on the sender's domain")
    date_line = re.search(rb"(?im)^Date:(.*)$", head)
    if date_line is None:
        problems.append("no Date header")
    else:
        text = date_line[1].decode().strip()
        if text.endswith("-0000") or parsedate_to_datetime(text).tzinfo is None:
            problems.append(f"Date {text!r} has no real zone (-0000 means unknown)")

    if msg.get_content_type() != "multipart/alternative":
        problems.append(f"top-level type is {msg.get_content_type()}")
    leaves = [p for p in msg.walk() if not p.is_multipart()]
    types = sorted(p.get_content_type() for p in leaves)
    if types != ["text/html", "text/plain"]:
        problems.append(f"parts are {types}, not one text/plain and one text/html")
    for part in leaves:
        cte = str(part.get("Content-Transfer-Encoding", "7bit")).lower()
        limit = 76 if cte in ("quoted-printable", "base64") else 998
        payload = part.get_payload()
        assert isinstance(payload, str)
        for n, line in enumerate(payload.splitlines(), 1):
            if len(line) > limit:
                problems.append(
                    f"{part.get_content_type()} ({cte}) line {n} has {len(line)} characters"
                    f" (limit {limit})"
                )
                break
        if part.get_content() == "":
            problems.append(f"{part.get_content_type()} part is empty")

    unsubscribe = msg.get_all("List-Unsubscribe") or []
    one_click = msg.get_all("List-Unsubscribe-Post") or []
    if made.list_headers:
        raw_lines = head.split(b"\r\n")
        at = next(
            (
                i
                for i, line in enumerate(raw_lines)
                if line.lower().startswith(b"list-unsubscribe:")
            ),
            None,
        )
        if len(unsubscribe) != 1 or at is None:
            problems.append("no List-Unsubscribe header")
        else:
            if not str(unsubscribe[0]).startswith("<https://mail.clinic.example/unsubscribe/"):
                problems.append(f"List-Unsubscribe {unsubscribe[0]!r} is not our https link")
            if "@" in str(unsubscribe[0]).split(">")[0]:
                problems.append("List-Unsubscribe URL holds an address")
            if at + 1 < len(raw_lines) and raw_lines[at + 1][:1] in (b" ", b"\t"):
                problems.append("List-Unsubscribe is folded over more than one line")
        if [str(v) for v in one_click] != ["List-Unsubscribe=One-Click"]:
            problems.append(f"List-Unsubscribe-Post is {one_click!r} (RFC 8058)")
    elif unsubscribe or one_click:
        problems.append("List-Unsubscribe headers on an email that is not list mail")
    if made.campaign and not msg["List-Id"]:
        problems.append("campaign email without List-Id")
    return problems


# -- producing the whole library -------------------------------------------------------------


def _plant_every_email(cli: CLI, tmp_path: Path) -> tuple[AppContext, set[str]]:
    """Import one person per (campaign, step, variant) plus one for system email, and write a
    due ledger row for each; returns the context and the labels that must come out."""
    ctx = AppContext.from_settings(load_settings())
    catalog = ctx.catalog
    wanted: list[tuple[str, str, str]] = [
        (campaign.id, step.id, variant.id)
        for campaign in catalog
        for step in campaign.steps
        for variant in (step.default, *step.variants)
    ]
    assert len({c for c, _, _ in wanted}) >= 1 and len(wanted) >= 8
    rows = [f"p{i}@example.com,Ann,lower_back,Europe/London,yes,," for i in range(len(wanted))]
    rows.append("sys@example.com,Sam,neck,Europe/London,yes,,")
    # Nothing else is planted for this one, so the newsletter's default version reaches them
    # (a person with a campaign email in flight waits seven days for the next).
    rows.append("news@example.com,Nia,lower_back,Europe/London,yes,,")
    import_people(cli, tmp_path, rows, at=MONDAY)
    # A one-off broadcast (newsletter) with a variant goes out in the same tick.
    news = str(news_files(tmp_path))
    run = broadcast_approved(cli, news, "--at", "2026-11-23 10:00", "--id", "clinic-news")
    assert run.code == 0, run.err
    with ctx.db.begin() as conn:
        ids = {r.email: r.id for r in conn.execute(select(subscribers.c.email, subscribers.c.id))}
        ledger = [
            sends_ledger.new_row(
                subscriber_id=ids[f"p{i}@example.com"],
                campaign_id=campaign_id,
                step_id=step_id,
                variant_id=variant_id,
                kind=CAMPAIGN,
                now=MONDAY,
            )
            for i, (campaign_id, step_id, variant_id) in enumerate(wanted)
        ]
        ledger += [
            sends_ledger.new_row(
                subscriber_id=ids["sys@example.com"],
                campaign_id=SYSTEM_CAMPAIGN,
                step_id=name if name == "confirm" else f"{name}:probe",
                variant_id="default",
                kind=SYSTEM,
                now=MONDAY,
            )
            for name in SYSTEM_EMAILS
        ]
        # A row the planner may have written already keeps its own variant; ours then loses.
        sends_ledger.plan(conn, ledger)
    labels = {"/".join(w) for w in wanted} | {f"system/{name}" for name in SYSTEM_EMAILS}
    labels |= {f"{BROADCAST}/default", f"{BROADCAST}/neck"}
    return ctx, labels | {f"system/{name}" for name in OPS_EMAILS}


def _send_everything(ctx: AppContext) -> None:
    report = run_tick(ctx, MONDAY)
    assert report.delivery.failed == 0 and report.delivery.sent > 0
    # The alerts about the service itself, each raised by its own module, then delivered.
    health = TransportBreaker(ctx.db, ctx.transport.name, STAFF)
    for _ in range(3):  # three failed requests in a row open the breaker: one alert
        health.record([Result("probe", Outcome.RETRY, error="HTTP 503")], MONDAY)
    health.reset()
    with ctx.db.begin() as conn:  # any complaint rate raises an alert when the bar is below 0
        complaints.evaluate(conn, MONDAY, min_volume=0, alert_rate=-1.0, pause_rate=2.0)
    # A campaign set aside while the service runs (its files stopped building).
    ctx.broken = {"set-aside-demo": [Problem("campaigns/set-aside-demo/01-x.md", 3, "broken")]}
    assert record_broken(ctx, MONDAY) == {
        "set-aside-demo": ["campaigns/set-aside-demo/01-x.md:3: broken"]
    }
    # A webhook receiver switched off after failing for days.
    with ctx.db.begin() as conn:
        webhook_queue.add(conn, "https://pms.example/hook", ["all"], MONDAY)
        conn.execute(webhook_endpoints.update().values(failing_since=MONDAY - timedelta(days=4)))
    assert deliver_due(ctx.db, MONDAY).disabled == 1
    # An email set aside because the provider refused its content (scheduler.setaside).
    assert setaside.set_aside(
        ctx.db, ("set-aside-demo", "01-x", "default"), "HTTP 400: refused subject", None, MONDAY
    )
    # A follow-up left open past its time (engagement.followups).
    with ctx.db.begin() as conn:
        sid = conn.execute(select(subscribers.c.id).limit(1)).scalar_one()
        followups.open_followup(
            conn, followups.Policy.parse("4 hours"), sid, "red_flag", "probe", {}, MONDAY
        )
    assert remind_overdue(ctx, MONDAY + timedelta(hours=5)) >= 1
    # The review workflow's notices: a submission to the clinicians, a decision to its author.
    with ctx.db.begin() as conn:
        digest = accounts.new_password("x@clinic.example", "long enough passphrase here")
        mara = accounts.add_user(conn, "mara@clinic.example", "marketing", digest, MONDAY)
        cleo = accounts.add_user(conn, "cleo@clinic.example", "clinician", digest, MONDAY)
        detail = {"campaign": "spasm-education", "number": 2}
        audit.record(conn, mara, "content.submit", "campaign_version", "v2", MONDAY, detail)
        audit.record(conn, cleo, "content.approve", "campaign_version", "v2", MONDAY, detail)
    assert send_review_notices(ctx, MONDAY) >= 2
    # A clinician's review of live content that falls due soon.
    with ctx.db.begin() as conn:
        live = versions.in_state(conn, versions.ACTIVE)[0]
        reviewer = Actor(cleo.id, cleo.email, "clinician")
        year = timedelta(days=365)
        versions.approve(conn, live, reviewer, "", MONDAY, year, audit=audit.writer(cleo, MONDAY))
    assert warn_review_due(ctx, MONDAY + timedelta(days=360)) >= 1
    delivered = deliverer(ctx).deliver(MONDAY)
    assert set(delivered.sent) == set(OPS_EMAILS)
    with ctx.db.begin() as conn:
        assert alerts.pending(conn) == []


def _label(ctx: AppContext, send_id: str, raw: bytes) -> Made:
    with ctx.db.begin() as conn:
        row = conn.execute(
            select(sends.c.campaign_id, sends.c.step_id, sends.c.variant_id).where(
                sends.c.send_id == send_id
            )
        ).first()
    if row is None:  # not a ledger row: one of the alerts about the service
        subject = str(message_from_bytes(raw, policy=email_policy.default)["Subject"]).lower()
        name = (
            "review-due"
            if subject.startswith("clinical review due")
            else "review-submitted"
            if subject.startswith("review requested")
            else "review-decided"
            if subject.startswith("approved:")
            else "followup-alert"
            if "follow-ups are waiting" in subject
            else "message-alert"
            if "an email is set aside" in subject
            else "complaint-alert"
            if "complaint" in subject
            else "webhook-alert"
            if "webhook" in subject
            else "campaign-alert"
            if "set aside" in subject
            else "transport-alert"
        )
        return Made(f"system/{name}", campaign=False, list_headers=False, raw=raw)
    if row.campaign_id == SYSTEM_CAMPAIGN:
        name = row.step_id.partition(":")[0]
        return Made(f"system/{name}", False, name not in NO_LIST_HEADERS, raw)
    if row.campaign_id == BROADCAST:  # its one step is named by the broadcast itself
        return Made(f"{BROADCAST}/{row.variant_id}", True, True, raw)
    return Made(f"{row.campaign_id}/{row.step_id}/{row.variant_id}", True, True, raw)


def _check_all(made: list[Made], labels: set[str]) -> None:
    seen = {m.label for m in made}
    assert labels <= seen, f"never produced: {sorted(labels - seen)}"
    failures = {m.label: p for m in made if (p := standards_problems(m))}
    assert failures == {}
    # The doctor's own check of a sample message agrees on every one.
    doctor = {m.label: p for m in made if (p := _doctor_problems(m))}
    assert doctor == {}


def _doctor_problems(made: Made) -> list[str]:
    return message_problems(made.raw, from_domain=FROM_DOMAIN, list_mail=made.list_headers)


def _configure(cli: CLI) -> None:
    cli.env("CLINICMAIL_STAFF_EMAIL", STAFF)
    assert cli("init").code == 0


@sqlite_only("the MIME lines are built from the rendered email, not from SQL")
def test_every_outbox_message_keeps_the_standards(cli: CLI, tmp_path: Path) -> None:
    _configure(cli)
    ctx, labels = _plant_every_email(cli, tmp_path)
    try:
        _send_everything(ctx)
        with ctx.db.begin() as conn:
            stored = conn.execute(select(outbox.c.send_id, outbox.c.message)).all()
        made = [_label(ctx, send_id, bytes(raw)) for send_id, raw in stored]
    finally:
        ctx.close()
    _check_all(made, labels)


@sqlite_only("the MIME lines are built from the rendered email, not from SQL")
def test_every_smtp_message_keeps_the_standards(
    cli: CLI,
    tmp_path: Path,
    smtp: tuple[Sink, int],
) -> None:
    sink, port = smtp
    _configure(cli)
    use_smtp(cli, port)
    approve_library(cli)  # campaign email goes only once a clinician approved it
    ctx, labels = _plant_every_email(cli, tmp_path)
    try:
        _send_everything(ctx)
        made = []
        for _sender, _rcpts, raw in sink.messages:
            send_id = message_from_bytes(raw)["X-Clinicmail-Send-Id"]
            made.append(_label(ctx, str(send_id), raw))
    finally:
        ctx.close()
    _check_all(made, labels)


@pytest.mark.parametrize(
    ("mangle", "expected"),
    [
        (lambda raw: raw.replace(b"+0000", b"-0000", 1), "no real zone"),
        (lambda raw: raw.replace(b"\r\n\r\n", b"\r\nMIME-Version: 1.0\r\n\r\n", 2), "MIME-Version"),
        (
            lambda raw: re.sub(rb"(Message-ID: <[^@]+@)[^>]+", rb"\1elsewhere.example", raw),
            "Message-ID",
        ),
        (lambda raw: raw.replace(b"List-Unsubscribe-Post", b"X-Removed", 1), "RFC 8058"),
        # join three quoted-printable soft line breaks (not the "==" ending a boundary line)
        (lambda raw: re.sub(rb"([^=])=\r\n", rb"\1", raw, count=3), "characters (limit 76)"),
    ],
)
def test_the_checks_catch_what_they_look_for(
    sqlite_cli: CLI, tmp_path: Path, mangle: object, expected: str
) -> None:
    """The line-by-line checks are not vacuous: each planted fault in a good message is named."""
    _configure(sqlite_cli)
    ctx, _labels = _plant_every_email(sqlite_cli, tmp_path)
    try:
        run_tick(ctx, MONDAY)
        with ctx.db.begin() as conn:
            send_id, raw = conn.execute(
                select(outbox.c.send_id, outbox.c.message)
                .join(sends, sends.c.send_id == outbox.c.send_id)
                .where(sends.c.kind == CAMPAIGN)
                .limit(1)
            ).one()
        good = _label(ctx, send_id, bytes(raw))
    finally:
        ctx.close()
    assert standards_problems(good) == []
    assert callable(mangle)
    bad = Made(good.label, good.campaign, good.list_headers, mangle(good.raw))
    assert bad.raw != good.raw
    assert any(expected in p for p in standards_problems(bad)), standards_problems(bad)
    assert _doctor_problems(good) == []
    assert _doctor_problems(bad) != []  # `clinicmail doctor` sees the same fault
