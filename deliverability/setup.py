"""Configuration checks: the settings a receiver (or a subscriber's mail client) will notice."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from deliverability.domain import GMAIL_YAHOO, org_domain
from deliverability.findings import Finding
from deliverability.lookup import Lookup


@dataclass(frozen=True)
class Setup:
    """The plain facts the checks need, taken from the service's settings by the caller."""

    from_email: str
    base_url: str
    transport: str
    webhook_key_set: bool
    staff_email: str
    click_tracking: bool | None  # None when the transport has no such setting


def _host_problem(host: str) -> str | None:
    if host in ("localhost", "localhost.localdomain") or host.endswith((".localhost", ".local")):
        return f"{host} is this machine: nobody who gets the email can open it"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified:
        return f"{host} is a loopback or private address: nobody who gets the email can open it"
    return f"{host} is a bare IP address: spam filters score links to IP addresses as phishing"


def check_setup(setup: Setup, lookup: Lookup | None) -> list[Finding]:
    """Every configuration check; the staff address is looked up through ``lookup`` (skipped
    when DNS is unavailable, which is reported on its own)."""
    findings: list[Finding] = []
    url = urlsplit(setup.base_url)
    host = (url.hostname or "").lower()
    from_domain = setup.from_email.rsplit("@", 1)[-1].lower()
    base_fix = f"CLINICMAIL_BASE_URL=https://mail.{org_domain(from_domain)}"
    if url.scheme != "https":
        findings.append(
            Finding(
                "config.base_url",
                "fail",
                f"CLINICMAIL_BASE_URL is {setup.base_url}, not https",
                f"{GMAIL_YAHOO}; RFC 8058 §3.1: the one-click List-Unsubscribe URL must be HTTPS, "
                "and links over plain http warn readers",
                base_fix,
            )
        )
    problem = _host_problem(host)
    if problem:
        findings.append(
            Finding("config.base_url.host", "fail", problem, "RFC 8058; spam filters", base_fix)
        )
    if url.scheme == "https" and problem is None:
        findings.append(Finding("config.base_url", "pass", f"links go to {setup.base_url}"))
    if problem is None and host and org_domain(host) != org_domain(from_domain):
        findings.append(
            Finding(
                "config.link_domain",
                "warn",
                f"links go to {host} but email comes from {from_domain}",
                "receivers and readers treat links to a domain other than the sender's as a phishing sign",
                f"serve clinicmail on a name under {org_domain(from_domain)}, e.g. {base_fix}",
            )
        )
    elif problem is None and host:
        findings.append(
            Finding("config.link_domain", "pass", f"link domain {host} aligns with {from_domain}")
        )
    if setup.transport == "sendgrid":
        if setup.webhook_key_set:
            findings.append(
                Finding(
                    "config.webhook_key",
                    "pass",
                    "the SendGrid Event Webhook key is set (bounces and complaints arrive signed)",
                )
            )
        else:
            findings.append(
                Finding(
                    "config.webhook_key",
                    "fail",
                    "CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY is not set, so bounces and spam reports never arrive",
                    f"{GMAIL_YAHOO}: senders must act on bounces and keep spam complaints below 0.3%, "
                    "which needs SendGrid's events",
                    "CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY=<the key under Settings → Mail Settings → "
                    "Event Webhook → Signature Verification>",
                )
            )
    if setup.click_tracking:
        findings.append(
            Finding(
                "config.click_tracking",
                "fail",
                "SendGrid click tracking is on: every link is rewritten to a SendGrid domain",
                "rewritten links no longer align with the sender's domain and put health-topic "
                "URLs through a third party",
                "turn click tracking off (Settings → Tracking in SendGrid; clinicmail sends it off)",
            )
        )
    elif setup.click_tracking is False:
        findings.append(Finding("config.click_tracking", "pass", "SendGrid click tracking is off"))
    if lookup is None:
        return findings
    try:
        validate_email(setup.staff_email, check_deliverability=True, dns_resolver=lookup.resolver)
    except EmailNotValidError as exc:
        findings.append(
            Finding(
                "config.staff_email",
                "fail",
                f"the staff address cannot receive mail ({exc})",
                "red-flag and transport alerts go to CLINICMAIL_STAFF_EMAIL; undeliverable, they are lost",
                "CLINICMAIL_STAFF_EMAIL=<an address at a domain with working MX records>",
            )
        )
    else:
        findings.append(Finding("config.staff_email", "pass", "the staff address can receive mail"))
    return findings
