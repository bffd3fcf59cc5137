"""``clinicmail doctor`` against a real DNS server on loopback (tests/dns_server.py): a
well-configured domain passes, and each common mistake is reported with why and the fix.
No network beyond loopback: CLINICMAIL_DNS_RESOLVER points the doctor at the test server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from deliverability import DnsUnavailable, Lookup
from deliverability.domain import SENDGRID, check_domain
from tests.support.approval import approve_library
from tests.support.cli import CLI
from tests.support.dns_server import ZoneResolver, dns_server
from tests.support.provider_faults import FaultySendGrid
from tests.support.signer import Signer
from tests.support.smtp import Sink

SENDGRID_SPF = '"v=spf1 ip4:167.89.0.0/17 ip4:208.117.48.0/20 ~all"'
# Enough TXT noise at every apex that UDP answers are truncated and the client retries on TCP.
NOISE = "".join(f'{{d}}. 300 IN TXT "site-verification-{i}={"x" * 60}"\n' for i in range(8))


def domain_zone(
    domain: str,
    *,
    spf: str | None = '"v=spf1 include:sendgrid.net ~all"',
    dkim_at: str | None = "",
    dmarc: str | None = '"v=DMARC1; p=quarantine; rua=mailto:dmarc@{d}; adkim=r; aspf=r"',
    dmarc_at: str | None = None,
    mx: bool = True,
    dkim_target: str = "u7.wl7",
) -> str:
    """One domain's records; each keyword plants (or leaves out) one thing."""
    lines = [NOISE.format(d=domain)]
    if spf is not None:
        lines.append(f"{domain}. 300 IN TXT {spf}")
    signing = dkim_at or domain
    if dkim_at is not None:
        for s in ("s1", "s2"):
            lines.append(
                f"{s}._domainkey.{signing}. 300 IN CNAME {s}.domainkey.{dkim_target}.sendgrid.net."
            )
    if dmarc is not None:
        lines.append(f"_dmarc.{dmarc_at or domain}. 300 IN TXT {dmarc.format(d=domain)}")
    if mx:
        lines.append(f"{domain}. 300 IN MX 10 mx.{domain}.")
        lines.append(f"mx.{domain}. 300 IN A 192.0.2.25")
    return "\n".join(lines) + "\n"


# Over 255 characters: published as two character-strings, which SPF reads joined (RFC 7208 §3.3).
TOO_MANY = (
    " ".join(f"include:spf{i}.lookups.example" for i in range(5))
    + '" " '
    + " ".join(f"include:spf{i}.lookups.example" for i in range(5, 10))
)
ZONES = "".join(
    [
        f"sendgrid.net. 300 IN TXT {SENDGRID_SPF}\n",
        # The keys SendGrid publishes where the clinics' selector CNAMEs point (u7.wl7 only).
        *(
            f'{s}.domainkey.u7.wl7.sendgrid.net. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkq{s}"\n'
            for s in ("s1", "s2")
        ),
        '_spf.google.com. 300 IN TXT "v=spf1 ip4:74.125.0.0/16 ~all"\n',
        *(f'spf{i}.lookups.example. 300 IN TXT "v=spf1 ip4:192.0.2.{i} -all"\n' for i in range(10)),
        domain_zone("good.example"),
        # Two includes at the top, nine more one level down: 11 in all.
        domain_zone(
            "nested.example", spf='"v=spf1 include:sendgrid.net include:hub.lookups.example ~all"'
        ),
        'hub.lookups.example. 300 IN TXT "v=spf1 '
        + " ".join(f"include:spf{i}.lookups.example" for i in range(5))
        + '" " '
        + " ".join(f"include:spf{i}.lookups.example" for i in range(5, 9))
        + ' -all"\n',
        domain_zone("nospf.example", spf=None),
        domain_zone("plusall.example", spf='"v=spf1 include:sendgrid.net +all"'),
        domain_zone("lookups.example", spf=f'"v=spf1 include:sendgrid.net {TOO_MANY} ~all"'),
        domain_zone("noprovider.example", spf='"v=spf1 include:_spf.google.com ~all"'),
        domain_zone("nodkim.example", dkim_at=None),
        # CNAMEs in place, pointing at names that publish nothing.
        domain_zone("dangling.example", dkim_target="u9.wl9"),
        domain_zone("nodmarc.example", dmarc=None),
        domain_zone("dmarcnone.example", dmarc='"v=DMARC1; p=none; rua=mailto:dmarc@{d}"'),
        # From news.misaligned.example; SendGrid authenticated the parent domain only, and DMARC
        # (found at the organisational domain) asks for strict DKIM alignment.
        domain_zone(
            "news.misaligned.example",
            dkim_at="misaligned.example",
            dmarc='"v=DMARC1; p=reject; adkim=s; aspf=s"',
            dmarc_at="misaligned.example",
        ),
        "misaligned.example. 300 IN A 192.0.2.1\n",
        domain_zone("nomx.example", mx=False),
        # An SMTP relay's domain: its own SPF include and a DKIM key under its own selector.
        domain_zone("relay.example", spf='"v=spf1 include:_spf.google.com ~all"', dkim_at=None),
        'google._domainkey.relay.example. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0B"\n',
        # A staff address elsewhere that can receive mail (nomx.example cannot).
        "staff.example. 300 IN MX 10 mx.staff.example.\nmx.staff.example. 300 IN A 192.0.2.26\n",
    ]
)


@pytest.fixture(scope="module")
def dns() -> Iterator[tuple[str, ZoneResolver]]:
    with dns_server(ZONES) as served:
        yield served


@pytest.fixture(autouse=True)
def fake_sendgrid(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> FaultySendGrid:
    fake = FaultySendGrid(httpserver)
    fake.good_key = "SG.doctor"
    monkeypatch.setenv("TEST_FAKE_SENDGRID", httpserver.url_for("").rstrip("/"))
    return fake


def doctor(cli: CLI, resolver: str, domain: str, *args: str, **env: str) -> tuple[int, Any]:
    cli.env("CLINICMAIL_DNS_RESOLVER", resolver)
    cli.env("CLINICMAIL_FROM_EMAIL", f"care@{domain}")
    cli.env("CLINICMAIL_STAFF_EMAIL", "team@staff.example")
    cli.env("CLINICMAIL_BASE_URL", f"https://mail.{domain.split('.', domain.count('.') - 1)[-1]}")
    cli.env("CLINICMAIL_TRANSPORT", "sendgrid")
    cli.env("SENDGRID_API_KEY", "SG.doctor")
    # The key is checked against a fake SendGrid (GET /v3/scopes) that accepts "SG.doctor".
    cli.env("CLINICMAIL_SENDGRID_HOST", os.environ["TEST_FAKE_SENDGRID"])
    cli.env("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", Signer().public_key)
    for name, value in env.items():
        cli.env(name, value)
    run = cli("doctor", "--json", *args)
    assert run.err == ""
    return run.code, run.json()


def by_check(report: Any) -> dict[str, dict[str, str]]:
    return {f["check"]: f for f in report["findings"]}


def test_a_well_configured_domain_passes_every_check(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver]
) -> None:
    resolver, zone = dns
    approve_library(sqlite_cli)
    code, report = doctor(sqlite_cli, resolver, "good.example")
    assert code == 0, report
    assert report["ok"] is True and report["domain"] == "good.example"
    assert report["provider"] == "sendgrid"
    assert [f for f in report["findings"] if f["status"] != "pass"] == []
    checks = by_check(report)
    for name in (
        "spf",
        "spf.provider",
        "spf.lookups",
        "dkim",
        "dmarc",
        "dmarc.policy",
        "dmarc.alignment",
        "mx",
        "config.base_url",
        "config.link_domain",
        "config.webhook_key",
        "config.click_tracking",
        "config.staff_email",
        "content.review",
    ):
        assert checks[name]["status"] == "pass", name
    samples = [f for f in report["findings"] if f["check"] == "message"]
    assert len(samples) == 2  # a campaign email and the confirmation email
    assert "tcp" in zone.protocols and "udp" in zone.protocols  # long answers went over TCP


def test_content_awaiting_a_clinician_is_reported(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver]
) -> None:
    """A fresh install through SendGrid holds the bundled library until a clinician approves
    it; the doctor says so (a warning: system emails still go) and how to approve."""
    resolver, _ = dns
    _, report = doctor(sqlite_cli, resolver, "good.example")
    review = by_check(report)["content.review"]
    assert review["status"] == "warn"
    assert "spasm-education" in review["summary"] and "safety email" in review["summary"]
    assert "clinicmail campaigns approve" in review["fix"]
    assert approve_library(sqlite_cli) == ["spasm-education"]
    _, report = doctor(sqlite_cli, resolver, "good.example")
    assert by_check(report)["content.review"]["status"] == "pass"


MISTAKES = [
    (
        "nospf.example",
        "spf",
        "no SPF record",
        'nospf.example. TXT "v=spf1 include:sendgrid.net ~all"',
    ),
    (
        "plusall.example",
        "spf.all",
        "+all",
        'plusall.example. TXT "v=spf1 include:sendgrid.net ~all"',
    ),
    ("lookups.example", "spf.lookups", "11 DNS lookups", "ip4:"),
    (
        "noprovider.example",
        "spf.provider",
        "does not include sendgrid.net",
        'noprovider.example. TXT "v=spf1 include:sendgrid.net include:_spf.google.com ~all"',
    ),
    ("nodkim.example", "dkim", "s1, s2", "s1._domainkey.nodkim.example. CNAME s1.domainkey."),
    (
        "dangling.example",
        "dkim",
        "s1._domainkey.dangling.example points to s1.domainkey.u9.wl9.sendgrid.net, "
        "which publishes no DKIM key",
        "s1._domainkey.dangling.example. CNAME s1.domainkey.",
    ),
    (
        "nodmarc.example",
        "dmarc",
        "no DMARC record",
        '_dmarc.nodmarc.example. TXT "v=DMARC1; p=quarantine',
    ),
    ("news.misaligned.example", "dmarc.alignment", "does not align", "news.misaligned.example"),
    ("nomx.example", "mx", "no MX record", "nomx.example. MX 10"),
]


@pytest.mark.parametrize(("domain", "check", "says", "fix"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_planted_mistake_fails_with_why_and_the_record_to_add(
    sqlite_cli: CLI,
    dns: tuple[str, ZoneResolver],
    domain: str,
    check: str,
    says: str,
    fix: str,
) -> None:
    code, report = doctor(sqlite_cli, dns[0], domain)
    assert code == 1 and report["ok"] is False
    finding = by_check(report)[check]
    assert finding["status"] == "fail", finding
    assert says in finding["summary"]
    assert finding["why"]  # names the receiver rule
    assert fix in finding["fix"]
    # Only the planted mistake (and what follows from it) fails.
    failed = {f["check"] for f in report["findings"] if f["status"] == "fail"}
    no_key = {"nodkim.example", "dangling.example"}  # no DKIM key: nothing can align
    follows = {"dmarc.alignment"} if domain in no_key else set()
    assert failed == {check} | follows, failed


def test_dmarc_p_none_is_a_warning_with_a_stronger_record(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver]
) -> None:
    code, report = doctor(sqlite_cli, dns[0], "dmarcnone.example")
    assert code == 0  # Gmail and Yahoo accept p=none: advice, not a failure
    finding = by_check(report)["dmarc.policy"]
    assert finding["status"] == "warn" and "p=none" in finding["summary"]
    assert "p=quarantine" in finding["fix"]


def test_configuration_mistakes_are_reported(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver]
) -> None:
    sqlite_cli.env("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", None)
    code, report = doctor(
        sqlite_cli,
        dns[0],
        "good.example",
        CLINICMAIL_BASE_URL="http://127.0.0.1:8000",
        CLINICMAIL_STAFF_EMAIL="team@nomx.example",
        CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY="",
    )
    assert code == 1
    checks = by_check(report)
    assert checks["config.base_url"]["status"] == "fail"
    assert "RFC 8058" in checks["config.base_url"]["why"]
    assert checks["config.base_url.host"]["status"] == "fail"
    assert checks["config.webhook_key"]["status"] == "fail"
    assert checks["config.staff_email"]["status"] == "fail"
    # The http List-Unsubscribe in the sample is the setting's doing, not a bug in clinicmail.
    campaign_sample = next(
        f
        for f in report["findings"]
        if f["check"] == "message" and "confirmation" not in f["summary"]
    )
    assert campaign_sample["status"] == "fail", campaign_sample
    assert "CLINICMAIL_BASE_URL is not https" in campaign_sample["summary"]
    assert "CLINICMAIL_BASE_URL" in campaign_sample["fix"] and "bug" not in campaign_sample["fix"]


def test_a_domain_that_does_not_exist_is_one_finding(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver]
) -> None:
    code, report = doctor(sqlite_cli, dns[0], "nowhere.example")
    assert code == 1
    dns_findings = [
        f
        for f in report["findings"]
        if f["check"].split(".")[0] in ("dns", "spf", "dkim", "dmarc", "mx")
    ]
    assert [f["check"] for f in dns_findings] == ["dns.domain"], dns_findings
    assert "nowhere.example does not exist" in dns_findings[0]["summary"]
    assert "CLINICMAIL_FROM_EMAIL" in dns_findings[0]["fix"]


def test_the_transport_configured_is_named(sqlite_cli: CLI, dns: tuple[str, ZoneResolver]) -> None:
    _, report = doctor(sqlite_cli, dns[0], "good.example", CLINICMAIL_TRANSPORT="outbox")
    assert report["transport"] == "outbox" and report["provider"] == "sendgrid"
    run = sqlite_cli("doctor")
    first = run.out.splitlines()[0]
    assert first == (
        "clinicmail doctor: good.example (transport outbox: nothing leaves this machine; "
        "DNS checked for sendgrid)"
    ), first
    sqlite_cli.env("CLINICMAIL_TRANSPORT", "sendgrid")
    run = sqlite_cli("doctor")
    assert run.out.splitlines()[0] == "clinicmail doctor: good.example (sending through sendgrid)"


def test_links_on_another_domain_are_a_warning(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver]
) -> None:
    code, report = doctor(
        sqlite_cli, dns[0], "good.example", CLINICMAIL_BASE_URL="https://clinicmail.herokuapp.com"
    )
    assert code == 0
    assert by_check(report)["config.link_domain"]["status"] == "warn"


def test_a_named_selector_is_checked_instead(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver]
) -> None:
    code, report = doctor(sqlite_cli, dns[0], "good.example", "--dkim-selector", "k9")
    assert code == 1
    finding = by_check(report)["dkim"]
    assert finding["status"] == "fail" and "k9" in finding["summary"]
    assert 'k9._domainkey.good.example. TXT "v=DKIM1' in finding["fix"]


def test_text_output_explains_each_failure(sqlite_cli: CLI, dns: tuple[str, ZoneResolver]) -> None:
    sqlite_cli.env("CLINICMAIL_DNS_RESOLVER", dns[0])
    sqlite_cli.env("CLINICMAIL_FROM_EMAIL", "care@nodmarc.example")
    sqlite_cli.env("CLINICMAIL_STAFF_EMAIL", "team@staff.example")
    run = sqlite_cli("doctor")
    assert run.code == 1 and run.err == ""
    lines = run.out.splitlines()
    fail = next(i for i, line in enumerate(lines) if line.startswith("FAIL  dmarc "))
    assert lines[fail + 1].strip().startswith("why: Gmail and Yahoo")
    assert lines[fail + 2].strip().startswith('fix: _dmarc.nodmarc.example. TXT "v=DMARC1;')
    assert lines[-1].endswith("fix the FAIL lines before the first send")


def test_a_dead_resolver_is_a_failure_not_a_traceback(sqlite_cli: CLI) -> None:
    with dns_server("") as (address, _zone):
        pass  # stopped: nothing answers on that port any more
    sqlite_cli.env("CLINICMAIL_DNS_RESOLVER", address)
    sqlite_cli.env("CLINICMAIL_FROM_EMAIL", "care@good.example")
    with pytest.raises(DnsUnavailable):
        Lookup(address, timeout=0.5).txt("good.example")
    run = sqlite_cli("doctor", "--json")
    assert run.code == 1
    assert by_check(run.json())["dns"]["status"] == "fail"


def test_a_bad_resolver_setting_is_one_line(sqlite_cli: CLI) -> None:
    sqlite_cli.env("CLINICMAIL_DNS_RESOLVER", "127.0.0.1:notaport")
    run = sqlite_cli("doctor")
    assert run.code == 1
    assert run.err.startswith("clinicmail: CLINICMAIL_DNS_RESOLVER")
    assert len(run.err.strip().splitlines()) == 1


def test_spf_lookups_are_counted_through_includes(dns: tuple[str, ZoneResolver]) -> None:
    findings = {f.check: f for f in check_domain(Lookup(dns[0]), "lookups.example", SENDGRID)}
    assert findings["spf.lookups"].summary.startswith("the SPF record needs 11 DNS lookups")
    nested = {f.check: f for f in check_domain(Lookup(dns[0]), "nested.example", SENDGRID)}
    assert nested["spf.lookups"].status == "fail"
    assert nested["spf.lookups"].summary.startswith("the SPF record needs 11 DNS lookups")
    good = {f.check: f for f in check_domain(Lookup(dns[0]), "good.example", SENDGRID)}
    assert good["spf.lookups"].summary.startswith("the SPF record needs 1 of")


def test_an_smtp_relay_is_checked_with_the_include_and_selector_named(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver], smtp: tuple[Sink, int]
) -> None:
    # A real SMTP server: the doctor connects and says EHLO (the login check), sends nothing.
    relay = {"CLINICMAIL_TRANSPORT": "smtp", "CLINICMAIL_SMTP_URL": f"smtp://127.0.0.1:{smtp[1]}"}
    approve_library(sqlite_cli)
    code, report = doctor(sqlite_cli, dns[0], "relay.example", **relay)
    assert code == 0 and report["provider"] == "smtp"
    checks = by_check(report)
    # Without the provider's names the doctor cannot judge, and says what to pass.
    assert (
        checks["spf.provider"]["status"] == "warn"
        and "--spf-include" in checks["spf.provider"]["fix"]
    )
    assert checks["dkim"]["status"] == "warn" and "--dkim-selector" in checks["dkim"]["fix"]
    assert "config.webhook_key" not in checks and "config.click_tracking" not in checks
    named = ("--spf-include", "_spf.google.com", "--dkim-selector", "google")
    code, report = doctor(sqlite_cli, dns[0], "relay.example", *named, **relay)
    assert code == 0
    # Only the advice that SMTP bounces are not read without a bounce mailbox remains.
    assert [f["check"] for f in report["findings"] if f["status"] != "pass"] == ["bounces.mailbox"]
    assert "CLINICMAIL_BOUNCE_MAILBOX" in by_check(report)["bounces.mailbox"]["fix"]
    wrong = ("--spf-include", "spf.protection.outlook.com", "--dkim-selector", "google")
    code, report = doctor(sqlite_cli, dns[0], "relay.example", *wrong, **relay)
    assert code == 1 and by_check(report)["spf.provider"]["status"] == "fail"
    assert by_check(report)["provider.login"]["status"] == "pass"
    assert smtp[0].messages == []


def test_a_broken_library_is_a_failed_sample_not_a_traceback(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver]
) -> None:
    broken = Path(__file__).parent / "fixtures" / "campaigns" / "broken"
    code, report = doctor(sqlite_cli, dns[0], "good.example", CLINICMAIL_CAMPAIGNS_DIR=str(broken))
    assert code == 1
    samples = [f for f in report["findings"] if f["check"] == "message"]
    failed = [f for f in samples if f["status"] == "fail"]
    assert failed and all("campaigns validate" in f["fix"] for f in failed)
    assert by_check(report)["dkim"]["status"] == "pass"  # the other checks still ran


def test_a_bad_key_is_caught_before_the_first_send(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver], fake_sendgrid: FaultySendGrid
) -> None:
    code, report = doctor(sqlite_cli, dns[0], "good.example", SENDGRID_API_KEY="SG.wrong")
    assert code == 1 and report["ok"] is False
    key = by_check(report)["provider.key"]
    assert key["status"] == "fail" and "SENDGRID_API_KEY" in key["fix"]
    # One authenticated read, nothing sent.
    assert len(fake_sendgrid.scope_calls) == 1 and fake_sendgrid.requests == []
    assert fake_sendgrid.scope_calls[0]["Authorization"] == "Bearer SG.wrong"


def test_a_key_without_mail_send_is_caught(
    sqlite_cli: CLI, dns: tuple[str, ZoneResolver], fake_sendgrid: FaultySendGrid
) -> None:
    fake_sendgrid.scopes = ["stats.read", "scopes.read"]
    code, report = doctor(sqlite_cli, dns[0], "good.example")
    key = by_check(report)["provider.key"]
    assert code == 1 and key["status"] == "fail" and "mail.send" in key["summary"]
    assert fake_sendgrid.requests == []
