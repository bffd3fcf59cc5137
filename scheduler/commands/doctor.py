"""``clinicmail doctor``: before the first send, what a receiving mail server will think.

The checks live in :mod:`deliverability`; this module hands them the settings, the DNS server
to ask (``CLINICMAIL_DNS_RESOLVER``) and sample messages rendered by the real dispatcher and
MIME builder. Nothing is written to the database and nothing is sent.
"""

from __future__ import annotations

import json
import secrets

import click

from deliverability import DnsUnavailable, Finding, Lookup, Report
from deliverability.domain import check_domain, provider_for
from deliverability.message import check_message
from deliverability.setup import Setup, check_setup


def register(cli: click.Group) -> None:
    cli.add_command(doctor)


MARKS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}


@click.command()
@click.option(
    "--json", "as_json", is_flag=True, help="Print the findings as JSON (for monitoring)."
)
@click.option(
    "--dkim-selector",
    "selectors",
    multiple=True,
    metavar="S",
    help="A DKIM selector to check (repeatable). Default: the provider's own (SendGrid: s1, s2).",
)
@click.option(
    "--spf-include",
    metavar="DOMAIN",
    default=None,
    help="The SPF include an SMTP relay needs (e.g. _spf.google.com); SendGrid's is known.",
)
def doctor(as_json: bool, selectors: tuple[str, ...], spf_include: str | None) -> None:
    """Check the from-domain's DNS (SPF, DKIM, DMARC, MX), the configuration and a sample
    message against the rules Gmail, Yahoo and the RFCs apply to bulk senders.

    Each problem says what is wrong, why it matters and the exact record or setting to add.
    Exit 1 when any check fails, 0 otherwise (warnings are advice).
    """
    from scheduler.cli import _settings

    settings = _settings()
    domain = settings.from_email.rsplit("@", 1)[-1].lower()
    transport = settings.transport
    provider = provider_for("sendgrid" if transport == "outbox" else transport, spf_include)
    report = Report(domain=domain, provider=provider.name)
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
    samples, click_tracking = _samples()
    setup = Setup(
        from_email=settings.from_email,
        base_url=settings.base_url,
        transport=transport,
        webhook_key_set=bool(settings.sendgrid_webhook_public_key),
        staff_email=settings.staff_email or settings.from_email,
        click_tracking=click_tracking,
    )
    report.findings += check_setup(setup, lookup)
    report.findings += samples
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print(report)
    if not report.ok:
        raise SystemExit(1)


def _no_dns(detail: str) -> Finding:
    return Finding(
        "dns",
        "fail",
        f"DNS did not answer: {detail}",
        "without answers nothing can be checked",
        "check the network, or CLINICMAIL_DNS_RESOLVER=host:port",
    )


def _samples() -> tuple[list[Finding], bool | None]:
    """A campaign email (the first step of the first active campaign) and the confirmation
    email, each built by the dispatcher and MIME builder the service sends with. Returns their
    findings and whether SendGrid click tracking would be on (None for other transports)."""
    from sqlalchemy.exc import SQLAlchemyError

    from campaigns.ledger import CAMPAIGN, SYSTEM, SYSTEM_CAMPAIGN
    from campaigns.loader import CatalogError
    from scheduler.cli import _context
    from scheduler.dispatch import Claimed, Dispatcher, LinkMaker
    from scheduler.transports.mime import build_message
    from scheduler.transports.sendgrid import SendGridTransport
    from subscribers.tokens import Tokens

    ctx = _context(migrate=False)  # the doctor writes nothing, not even a new database
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
    # Built like the tick's dispatcher, without the parts that need the database (tracking
    # links, the transport's health): only its rendering and batch building are used.
    dispatcher = Dispatcher(
        db=ctx.db,
        catalog=ctx.catalog,
        renderer=ctx.renderer,
        transport=ctx.transport,
        links=LinkMaker(
            make=lambda purpose, public_id, send_id=None: (
                f"{s.base_url}/{purpose}/{tokens.make(purpose, public_id, send_id)}"
            ),
            record_url=lambda public_id: f"{s.base_url}/admin/subscribers/{public_id}",
            staff_email=s.staff_email,
        ),
        from_email=s.from_email,
        from_name=s.clinic_name,
        list_domain=domain,
    )
    rows = [Claimed(0, secrets.token_hex(16), 0, SYSTEM_CAMPAIGN, "confirm", "default", SYSTEM, 0)]
    if campaign is not None and campaign.steps:
        step = campaign.steps[0]
        rows.insert(
            0, Claimed(0, secrets.token_hex(16), 0, campaign.id, step.id, "default", CAMPAIGN, 0)
        )
    findings: list[Finding] = list(set_aside)
    click_tracking: bool | None = None
    for row in rows:
        row.email, row.first_name, row.public_id = f"sample@{domain}", "Sam", "sample"
        key = (row.campaign_id, row.step_id, row.variant_id)
        batch = dispatcher._batch(key, [row], dispatcher._rendered(row))
        raw = build_message(batch, batch.recipients[0]).as_bytes()
        label = "confirmation email" if row.kind == SYSTEM else f"{row.campaign_id}/{row.step_id}"
        findings.append(
            check_message(raw, from_domain=domain, list_mail=row.kind == CAMPAIGN, label=label)
        )
        if isinstance(ctx.transport, SendGridTransport):
            body = ctx.transport.body(batch)
            click_tracking = bool(body["tracking_settings"]["click_tracking"]["enable"])
    return findings, click_tracking


def _print(report: Report) -> None:
    click.echo(f"clinicmail doctor: {report.domain} (sending through {report.provider})")
    for f in report.findings:
        click.echo(f"{MARKS[f.status]}  {f.check:<22} {f.summary}")
        if f.status != "pass":
            if f.why:
                click.echo(f"      why: {f.why}")
            if f.fix:
                click.echo(f"      fix: {f.fix}")
    counts = report.counts()
    verdict = "ready to send" if report.ok else "fix the FAIL lines before the first send"
    warnings = "1 warning" if counts["warn"] == 1 else f"{counts['warn']} warnings"
    click.echo(f"{counts['pass']} passed, {warnings}, {counts['fail']} failed: {verdict}")
