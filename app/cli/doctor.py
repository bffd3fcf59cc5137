"""``clinicmail doctor``: the checks (in :mod:`app.doctor`) and their report."""

from __future__ import annotations

import click

from app.cli.output import echo, echo_json
from app.settings import load_settings
from deliverability import Report

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
    from app.doctor import diagnose

    report = diagnose(load_settings(), selectors, spf_include)
    if as_json:
        echo_json(report.as_dict(), indent=2)
    else:
        _print(report)
    if not report.ok:
        raise SystemExit(1)


def _print(report: Report) -> None:
    if report.transport and report.transport != report.provider:
        how = (
            f"transport {report.transport}: nothing leaves this machine; "
            f"DNS checked for {report.provider}"
        )
    else:
        how = f"sending through {report.provider}"
    echo(f"clinicmail doctor: {report.domain} ({how})")
    for f in report.findings:
        echo(f"{MARKS[f.status]}  {f.check:<22} {f.summary}")
        if f.status != "pass":
            if f.why:
                echo(f"      why: {f.why}")
            if f.fix:
                echo(f"      fix: {f.fix}")
    counts = report.counts()
    verdict = "ready to send" if report.ok else "fix the FAIL lines before the first send"
    warnings = "1 warning" if counts["warn"] == 1 else f"{counts['warn']} warnings"
    echo(f"{counts['pass']} passed, {warnings}, {counts['fail']} failed: {verdict}")
