"""``clinicmail doctor``: before the first send, what a receiving mail server will think.

The checks live in :mod:`deliverability`; this module hands them the settings, the DNS server
to ask (``CLINICMAIL_DNS_RESOLVER``) and sample messages rendered by the real dispatcher and
MIME builder. Nothing is written to the database and nothing is sent.
"""

from __future__ import annotations

import secrets

from app.context import AppContext
from app.settings import Settings
from deliverability import DnsUnavailable, Finding, Lookup, Report
from deliverability.domain import check_domain, provider_for
from deliverability.message import check_message
from deliverability.setup import Setup, check_setup


def diagnose(settings: Settings, selectors: tuple[str, ...], spf_include: str | None) -> Report:
    """Every check, for ``clinicmail doctor``: the from-domain's DNS, the setup, the samples."""
    domain = settings.from_email.rsplit("@", 1)[-1].lower()
    transport = settings.transport
    provider = provider_for("sendgrid" if transport == "outbox" else transport, spf_include)
    report = Report(domain=domain, provider=provider.name, transport=transport)
    if transport == "outbox":
        report.findings.append(
            Finding(
                "config.transport",
                "warn",
                "CLINICMAIL_TRANSPORT is outbox: nothing leaves this machine; DNS is checked for SendGrid",
                "",
                "CLINICMAIL_TRANSPORT=sendgrid (or smtp with --spf-include and --dkim-selector)",
            )
        )
    lookup: Lookup | None = None
    try:
        lookup = Lookup(settings.dns_resolver)
        report.findings += check_domain(lookup, domain, provider, selectors)
    except DnsUnavailable as exc:
        report.findings.append(_no_dns(str(exc)))
        lookup = None  # the staff address cannot be checked either
    samples, click_tracking = _samples(settings)
    setup = Setup(
        from_email=settings.from_email,
        base_url=settings.base_url,
        transport=transport,
        webhook_key_set=bool(settings.sendgrid_webhook_public_key),
        staff_email=settings.staff_email or settings.from_email,
        click_tracking=click_tracking,
    )
    report.findings += check_setup(setup, lookup)
    report.findings += provider_findings(settings)
    report.findings += samples
    return report


def _clinical_review(ctx: AppContext) -> Finding:
    """Whether campaign content waits for a clinician's approval (and so sends nothing through
    sendgrid or smtp): see campaigns.review."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.approvals import gate_notice

    try:
        notice = gate_notice(ctx)
    except SQLAlchemyError:  # no database yet: nothing can have been approved
        return Finding(
            "content.review",
            "warn",
            "no database yet, so no campaign is approved by a clinician here",
            "only content a clinician of this clinic approved reaches patients",
            "clinicmail init, then clinicmail campaigns approve CAMPAIGN --as CLINICIAN-EMAIL",
        )
    if notice is None:
        return Finding(
            "content.review", "pass", "every live campaign is approved by a clinician here"
        )
    return Finding(
        "content.review",
        "warn",
        notice,
        "only content a clinician of this clinic approved reaches patients",
        "clinicmail campaigns approve CAMPAIGN --as CLINICIAN-EMAIL",
    )


def provider_findings(settings: Settings) -> list[Finding]:
    """One authenticated, side-effect-free call to the provider, so a bad key or a missing
    permission is caught before the first send: SendGrid's ``GET /v3/scopes`` (the key's
    permissions; ``mail.send`` is required); for SMTP, a connection, STARTTLS and the login,
    then QUIT (no MAIL command)."""
    if settings.transport == "sendgrid":
        return [_sendgrid_key(settings)]
    if settings.transport == "smtp":
        return [_smtp_login(settings), _bounce_mailbox(settings)]
    return []


def _bounce_mailbox(settings: Settings) -> Finding:
    """SMTP bounces come back by email: without a readable bounce mailbox a dead address is
    mailed for ever (and the sender's reputation pays)."""
    from engagement.bounce_mailbox import check

    if settings.bounce_mailbox is None:
        return Finding(
            "bounces.mailbox",
            "warn",
            "no bounce mailbox: SMTP bounces are not read",
            "dead addresses keep being mailed, which is what gets a sender blocked",
            "set CLINICMAIL_BOUNCE_MAILBOX=imaps://user:pass@host:993/INBOX (the mailbox where "
            "mail to CLINICMAIL_FROM_EMAIL that bounces arrives)",
        )
    problem = check(settings.bounce_mailbox)
    if problem is not None:
        return Finding(
            "bounces.mailbox",
            "fail",
            problem,
            "bounces are not read, so hard-bouncing addresses are not suppressed",
            "fix CLINICMAIL_BOUNCE_MAILBOX",
        )
    return Finding("bounces.mailbox", "pass", "the bounce mailbox can be read")


def _sendgrid_key(settings: Settings) -> Finding:
    from transports.sendgrid import SendGridTransport

    assert settings.sendgrid_api_key is not None
    transport = SendGridTransport(
        settings.sendgrid_api_key.get_secret_value(),
        host=settings.sendgrid_host,
        timeout=min(settings.sendgrid_timeout, 15.0),
    )
    try:
        scopes = transport.scopes()
    except Exception as exc:  # the network, DNS, TLS: say so, never a traceback
        return Finding(
            "provider.key",
            "fail",
            f"SendGrid could not be reached to check the API key ({type(exc).__name__})",
            "nothing can be sent until the provider answers",
            "check the network and CLINICMAIL_SENDGRID_HOST",
        )
    if not isinstance(scopes, list):  # refused: what the answer means
        fix = scopes.fix or "check SENDGRID_API_KEY and CLINICMAIL_SENDGRID_HOST"
        return Finding(
            "provider.key",
            "fail",
            f"SendGrid refused the API key when asked for its permissions ({scopes.reason})",
            "every send would be refused: nothing would go out",
            fix,
        )
    if "mail.send" not in scopes:
        return Finding(
            "provider.key",
            "fail",
            "the SendGrid API key lacks the Mail Send permission (mail.send)",
            "every send would be refused with HTTP 403",
            "in SendGrid, Settings → API Keys: give this key Mail Send (or create one that has it)",
        )
    return Finding("provider.key", "pass", "SendGrid accepts the API key and it may send mail")


def _smtp_login(settings: Settings) -> Finding:
    import smtplib

    from transports.smtp import SMTPTransport
    from transports.verdicts import smtp_exception_verdict

    assert settings.smtp_url is not None
    transport = SMTPTransport(settings.smtp_url.get_secret_value(), timeout=15.0)
    try:
        transport.verify()
    except (OSError, smtplib.SMTPException) as exc:
        verdict = smtp_exception_verdict(exc, "connect")
        return Finding(
            "provider.login",
            "fail",
            f"the SMTP server refused the connection or login ({verdict.reason})",
            "every send would be refused: nothing would go out",
            verdict.fix or "check the host and port in CLINICMAIL_SMTP_URL",
        )
    return Finding("provider.login", "pass", "the SMTP server accepts the connection and login")


def _no_dns(detail: str) -> Finding:
    return Finding(
        "dns",
        "fail",
        f"DNS did not answer: {detail}",
        "without answers nothing can be checked",
        "check the network, or CLINICMAIL_DNS_RESOLVER=host:port",
    )


def _samples(settings: Settings) -> tuple[list[Finding], bool | None]:
    """A campaign email (the first step of the first active campaign) and the confirmation
    email, each built by the dispatcher and MIME builder the service sends with. Returns their
    findings and whether SendGrid click tracking would be on (None for other transports)."""
    ctx = AppContext.from_settings(settings)  # not migrated: the doctor writes nothing
    try:
        return _built_samples(ctx)
    finally:
        ctx.close()


def _built_samples(ctx: AppContext) -> tuple[list[Finding], bool | None]:
    from sqlalchemy.exc import SQLAlchemyError

    from campaigns.ledger import CAMPAIGN, SYSTEM, SYSTEM_CAMPAIGN
    from campaigns.loader import CatalogError
    from scheduler.dispatch import Claimed
    from subscribers.tokens import Tokens
    from templates.system import CONFIRM
    from transports.mime import build_message
    from transports.sendgrid import SendGridTransport

    s = ctx.settings
    try:
        campaign = next((c for c in ctx.catalog if c.active), None)
    except (CatalogError, SQLAlchemyError) as exc:
        return [
            Finding(
                "message",
                "fail",
                f"no sample message could be built: the campaign library cannot be read ({type(exc).__name__})",
                "",
                "clinicmail init, then clinicmail campaigns validate",
            )
        ], None
    set_aside = [
        Finding(
            "message",
            "fail",
            f"campaign {cid} cannot be built, so it is set aside and sends nothing "
            f"({len(problems)} problem(s))",
            "",
            "clinicmail campaigns validate, then fix the files it names",
        )
        for cid, problems in sorted(ctx.broken.items())
    ]
    # A throwaway key: sample links look real but open nothing, and no key is stored.
    tokens = Tokens([secrets.token_hex(16)])
    domain = s.from_email.rsplit("@", 1)[-1]
    # The tick's dispatcher, for samples: only its rendering and batch building are used.
    from scheduler.tick import make_dispatcher

    dispatcher = make_dispatcher(ctx, samples=tokens)
    rows = [Claimed(0, secrets.token_hex(16), 0, SYSTEM_CAMPAIGN, CONFIRM, "default", SYSTEM, 0)]
    if campaign is not None and campaign.steps:
        step = campaign.steps[0]
        rows.insert(
            0, Claimed(0, secrets.token_hex(16), 0, campaign.id, step.id, "default", CAMPAIGN, 0)
        )
    findings: list[Finding] = [*set_aside, _clinical_review(ctx)]
    click_tracking: bool | None = None
    for row in rows:
        row.email, row.first_name, row.public_id = f"sample@{domain}", "Sam", "sample"
        batch = dispatcher.batch_for([row])
        raw = build_message(batch, batch.recipients[0]).as_bytes()
        label = "confirmation email" if row.kind == SYSTEM else f"{row.campaign_id}/{row.step_id}"
        findings.append(
            check_message(raw, from_domain=domain, list_mail=row.kind == CAMPAIGN, label=label)
        )
        if isinstance(ctx.transport, SendGridTransport):
            body = ctx.transport.body(batch)
            click_tracking = bool(body["tracking_settings"]["click_tracking"]["enable"])
    return findings, click_tracking
