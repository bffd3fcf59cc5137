"""Issue 21: every provider answer classified, and each class handled as a mature sender would.

The end-to-end case: a fake SendGrid (the real ``sendgrid`` client on loopback) refuses the API
key (401) for a day of hourly ticks, then accepts: every person gets their week 1 (none failed,
none skipped), safety email and staff alerts first, the weekly cap kept, and ``tick`` exits
non-zero with one line saying what to fix while it is broken.
"""

from __future__ import annotations

import smtplib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from staff.tables import audit_log
from tests.support.app import app_for, context_for
from tests.support.approval import approve_library
from tests.support.cli import CLI, write_csv
from tests.support.provider_faults import UNAUTHORIZED, UNVERIFIED, FaultySendGrid
from tests.support.sendgrid import use_sendgrid
from transports import Outcome
from transports.verdicts import (
    SENDGRID_KEY_FIX,
    SENDGRID_SENDER_FIX,
    sendgrid_verdict,
    smtp_exception_verdict,
    smtp_verdict,
)

STAFF = "frontdesk@clinic.example"
PEOPLE = [
    "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
    "bob@example.com,Bob,neck;desk_posture,Europe/London,yes,,",
    "cat@example.com,Cat,lower_back,Europe/London,yes,,",
    "dan@example.com,Dan,neck,Europe/London,yes,,",
    "flag@example.com,Fay,lower_back;red_flag_saddle_numbness,Europe/London,yes,,",
]
CAMPAIGN_PEOPLE = 4
METRICS_TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def faulty(httpserver: HTTPServer) -> FaultySendGrid:
    return FaultySendGrid(httpserver)


def setup_sendgrid(cli: CLI, httpserver: HTTPServer, tmp_path: Path) -> CLI:
    """The one place this file configures sending (SendGrid, a staff address) and the list."""
    use_sendgrid(cli, httpserver)
    approve_library(cli)  # real transports send only what a clinician approved
    cli.env("CLINICMAIL_STAFF_EMAIL", STAFF)
    cli.env("CLINICMAIL_METRICS_TOKEN", METRICS_TOKEN)
    write_csv(tmp_path / "people.csv", PEOPLE)
    assert cli("subscribers", "import", str(tmp_path / "people.csv")).code == 0
    return cli


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the classification table ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (202, None, Outcome.SENT),
        (401, UNAUTHORIZED, Outcome.ACCOUNT),
        (403, UNVERIFIED, Outcome.ACCOUNT),
        (403, '{"errors":[{"message":"access forbidden"}]}', Outcome.ACCOUNT),
        (429, None, Outcome.RETRY),
        (500, None, Outcome.RETRY),
        (503, None, Outcome.RETRY),
        (413, None, Outcome.REJECTED),
        (400, '{"errors":[{"field":"subject","message":"bad"}]}', Outcome.REJECTED),
        (400, '{"errors":[{"field":"from.email","message":"invalid"}]}', Outcome.ACCOUNT),
        (400, "not json", Outcome.REJECTED),
    ],
)
def test_sendgrid_answers_are_classified(status: int, body: str | None, outcome: Outcome) -> None:
    verdict, per_recipient = sendgrid_verdict(status, body)
    assert verdict.outcome is outcome and per_recipient == {}
    assert (verdict.fix is not None) == (outcome is Outcome.ACCOUNT)
    assert body is None or "Sender Identity" not in verdict.reason  # never a provider body


def test_sendgrid_fixes_name_the_setting() -> None:
    assert sendgrid_verdict(401, UNAUTHORIZED)[0].fix == SENDGRID_KEY_FIX
    assert sendgrid_verdict(403, UNVERIFIED)[0].fix == SENDGRID_SENDER_FIX
    assert "SENDGRID_API_KEY" in SENDGRID_KEY_FIX
    assert "CLINICMAIL_FROM_EMAIL" in SENDGRID_SENDER_FIX


def test_a_400_naming_one_recipient_fails_only_that_recipient() -> None:
    body = '{"errors":[{"field":"personalizations.2.to.0.email","message":"invalid"}]}'
    verdict, per_recipient = sendgrid_verdict(400, body)
    assert verdict.outcome is Outcome.RETRY  # the others were never sent
    assert {i: v.outcome for i, v in per_recipient.items()} == {2: Outcome.FAILED}


@pytest.mark.parametrize(
    ("stage", "code", "text", "outcome"),
    [
        ("rcpt", 550, "5.1.1 no such user", Outcome.FAILED),
        ("rcpt", 553, "5.1.3 bad address syntax", Outcome.FAILED),
        ("rcpt", 550, "5.7.1 relaying denied", Outcome.ACCOUNT),
        ("rcpt", 451, "4.3.0 try later", Outcome.RETRY),
        ("mail", 553, "5.7.1 sender not allowed", Outcome.ACCOUNT),
        ("mail", 421, "4.7.0 slow down", Outcome.RETRY),
        ("data", 552, "5.3.4 message too big", Outcome.REJECTED),
        ("data", 554, "5.6.0 bad content", Outcome.REJECTED),
        ("data", 451, "4.6.0 later", Outcome.RETRY),
        ("auth", 535, "5.7.8 bad credentials", Outcome.ACCOUNT),
        ("mail", 530, "5.7.0 authentication required", Outcome.ACCOUNT),
    ],
)
def test_smtp_replies_are_classified(stage: str, code: int, text: str, outcome: Outcome) -> None:
    assert smtp_verdict(stage, code, text.encode()).outcome is outcome


def test_smtp_exceptions_are_classified() -> None:
    auth = smtp_exception_verdict(smtplib.SMTPAuthenticationError(535, b"5.7.8 no"), "connect")
    assert auth.outcome is Outcome.ACCOUNT and "CLINICMAIL_SMTP_URL" in (auth.fix or "")
    tls = smtp_exception_verdict(smtplib.SMTPNotSupportedError("STARTTLS"), "connect")
    assert tls.outcome is Outcome.ACCOUNT
    refused = smtp_exception_verdict(ConnectionRefusedError(), "connect")
    assert refused.outcome is Outcome.RETRY
    lost = smtp_exception_verdict(smtplib.SMTPServerDisconnected(), "data")
    assert lost.outcome is Outcome.UNKNOWN


# -- the account class, end to end ------------------------------------------------------------
def test_a_day_of_401_then_the_fix_sends_everyone_their_week_1(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.refuse = (401, UNAUTHORIZED)
    start = datetime(2026, 11, 23, 9, 0)
    for hour in range(25):  # a day of hourly ticks, in and out of the send window
        run = cli("tick", "--now", iso(start + timedelta(hours=hour)), "--json")
        assert run.code == 1, run.out
        lines = run.err.strip().splitlines()
        assert len(lines) == 1 and "SENDGRID_API_KEY" in lines[0], run.err
        assert run.json()["failed"] == 0 and run.json()["sent"] == 0
    assert faulty.refused >= 25 and faulty.requests == []
    listed = cli("sends", "list", "--status", "failed", "--json")
    assert listed.code == 0 and listed.json() == []
    with app_for(cli) as (client, _ctx):
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert "SENDGRID_API_KEY" in health.json()["reason"]
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        assert "clinicmail_delivery_paused 1.0" in metrics

    faulty.refuse = None  # the key is fixed
    fixed = start + timedelta(hours=25)  # Tuesday 10:00 London
    run = cli("tick", "--now", iso(fixed), "--json")
    assert run.code == 0, run.err
    result = run.json()
    assert result["failed"] == 0 and result["paused"] is None
    steps = faulty.steps_by_recipient()
    firsts = {who: s[0] for who, s in steps.items() if who.endswith("@example.com")}
    assert sorted(firsts) == [
        "ann@example.com",
        "bob@example.com",
        "cat@example.com",
        "dan@example.com",
        "flag@example.com",
    ]
    # Everyone got their week 1 (the step each series starts with), nobody a later one.
    assert all(len(s) == 1 for who, s in steps.items() if who.endswith("@example.com"))
    assert firsts["flag@example.com"] == "safety"
    # Staff alerts and the safety email went before any campaign email.
    order = faulty.order()
    first_campaign = next(i for i, (c, _) in enumerate(order) if c != "_system")
    assert all(c == "_system" for c, _ in order[:first_campaign])
    assert {s for c, s in order[:first_campaign]} >= {"safety", "staff-alert", "transport-alert"}
    with app_for(cli) as (client, _ctx):
        assert client.get("/healthz").json()["status"] == "ok"

    # The weekly cap is kept from the moment the provider accepted week 1.
    sent_before = len(faulty.requests)
    assert cli("tick", "--now", iso(fixed + timedelta(days=6, hours=23))).code == 0
    assert len(faulty.requests) == sent_before
    assert cli("tick", "--now", iso(fixed + timedelta(days=7, minutes=1))).code == 0
    steps = faulty.steps_by_recipient()
    campaign_steps = [
        s for who, s in steps.items() if who.endswith("@example.com") and who != "flag@example.com"
    ]
    assert len(campaign_steps) == CAMPAIGN_PEOPLE
    assert all(len(s) == 2 and s[0] != s[1] for s in campaign_steps), steps


def test_an_unverified_sender_pauses_and_names_the_fix(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.refuse = (403, UNVERIFIED)
    run = cli("tick", "--now", "2026-11-23T10:00:00Z", "--json")
    assert run.code == 1 and "CLINICMAIL_FROM_EMAIL" in run.err
    assert run.json()["waiting"] >= 1 and run.json()["failed"] == 0
    status = cli("transport", "status", "--json").json()
    assert status["paused"] and "Sender" in status["paused"]


def test_refused_content_sets_the_email_aside_and_nobody_moves_on(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.refuse = (400, '{"errors":[{"field":"subject","message":"Invalid subject"}]}')
    first = cli("tick", "--now", "2026-11-23T10:00:00Z", "--json")
    assert first.code == 0, first.err  # not the account: the tick itself is fine
    assert first.json()["failed"] == 0 and first.json()["set_aside"] >= 1
    held = cli("transport", "status", "--json").json()["set_aside"]
    assert held and all("subject" in e["reason"] for e in held)
    refused_after_first = faulty.refused
    # Set aside: the email is not tried again every tick, and nobody's series moves on.
    for day in ("2026-11-23T11:00:00Z", "2026-11-24T10:00:00Z", "2026-11-30T10:00:00Z"):
        assert cli("tick", "--now", day).code == 0
    assert cli("sends", "list", "--status", "failed", "--json").json() == []
    campaign_requests = [b for b in faulty.requests if b["custom_args"]["campaign_id"] != "_system"]
    assert len({b["custom_args"]["step_id"] for b in campaign_requests}) <= len(held)
    assert faulty.refused - refused_after_first <= len(held) + 1  # alerts, not the held email
    # Once the operator clears it (or the content is fixed), it goes.
    faulty.refuse = None
    assert cli("transport", "reset").code == 0
    assert cli("tick", "--now", "2026-12-01T10:00:00Z", "--json").json()["sent"] >= 1


def test_a_header_the_email_library_refuses_is_rejected_and_nothing_is_stored(
    cli: CLI, tmp_path: Path
) -> None:
    """The issue's newsletter with a line break in its subject: refused by the email library at
    send time, so this message is REJECTED (never ``unknown``, never stored half-way)."""
    from app.context import AppContext
    from app.settings import load_settings
    from templates import Rendered
    from transports.base import Batch, Envelope
    from transports.outbox import OutboxTransport, newest

    assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    try:
        batch = Batch(
            rendered=Rendered(subject="Week 2\r\nBcc: x@example.org", html="<p>x</p>", text="x"),
            from_email="care@clinic.example",
            from_name="Clinic",
            category="c",
            custom_args={},
            headers={},
            recipients=[Envelope("s1", "to@example.org", None, {})],
        )
        (result,) = OutboxTransport(ctx.db).send(batch)
        assert result.outcome is Outcome.REJECTED and "email library" in (result.error or "")
        assert list(newest(ctx.db, 10)) == []
    finally:
        ctx.close()


def test_one_set_aside_email_is_released_and_the_others_stay_held(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.refuse = (400, '{"errors":[{"field":"subject","message":"Invalid subject"}]}')
    assert cli("tick", "--now", "2026-11-23T10:00:00Z").code == 0
    held = cli("transport", "status", "--json").json()["set_aside"]
    # The neck readers' variant of a step that is held in several variants.
    chosen = next(e for e in held if e["variant_id"] == "neck")
    campaign, step = chosen["campaign_id"], chosen["step_id"]
    assert sum(1 for e in held if (e["campaign_id"], e["step_id"]) == (campaign, step)) > 1
    faulty.refuse = None  # the provider would take it now
    # A wrong name, or a step held in several variants without --variant, is refused with the
    # fix, and changes nothing.
    wrong = cli("transport", "release", campaign, "no-such-step")
    assert wrong.code == 1 and "transport status" in wrong.err
    several = cli("transport", "release", campaign, step)
    assert several.code == 1 and "--variant" in several.err
    assert cli("transport", "status", "--json").json()["set_aside"] == held
    run = cli("transport", "release", campaign, step, "--variant", "neck")
    assert run.code == 0, run.err
    assert (
        run.out.strip()
        == f"{campaign}/{step}/neck is no longer set aside: it goes at the next tick"
    )
    left = cli("transport", "status", "--json").json()["set_aside"]
    assert left == [e for e in held if e is not chosen]
    before = len(faulty.requests)
    assert cli("tick", "--now", "2026-11-23T11:00:00Z").code == 0
    went = [b for b in faulty.requests[before:] if b["custom_args"]["campaign_id"] != "_system"]
    assert {(b["custom_args"]["campaign_id"], b["custom_args"]["step_id"]) for b in went} == {
        (campaign, step)
    }
    readers = sorted(p["to"][0]["email"] for b in went for p in b["personalizations"])
    assert readers == ["bob@example.com", "dan@example.com"]  # the neck readers, nobody else
    # Audited: which email, and why it had been set aside.
    with context_for(cli) as ctx, ctx.db.begin() as conn:
        rows = conn.execute(audit_log.select().where(audit_log.c.action.like("transport.%"))).all()
    assert [(r.action, r.target_id) for r in rows] == [
        ("transport.release", f"{campaign}/{step}/neck")
    ]
