"""DNS checks for the from-domain: SPF, DKIM, DMARC with alignment, and MX.

The rules are the receivers': since February 2024 Gmail and Yahoo require bulk senders to have
SPF and DKIM, a DMARC record (at least ``p=none``) whose alignment passes for the From domain,
and one-click unsubscribe. SPF follows RFC 7208, DKIM RFC 6376, DMARC RFC 7489.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from publicsuffixlist import PublicSuffixList

from deliverability.findings import Finding
from deliverability.lookup import Lookup

GMAIL_YAHOO = "Gmail and Yahoo bulk-sender rules (2024)"
SPF_LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4: more DNS-querying terms than this is a permerror


@dataclass(frozen=True)
class Provider:
    """What a sending provider needs in the clinic's DNS."""

    name: str  # the transport's name, as in CLINICMAIL_TRANSPORT
    label: str  # how findings name it
    spf_include: str | None  # the include: domain, None when unknown
    dkim_selectors: tuple[str, ...]  # selectors it signs with by default
    dkim_cname_suffix: str | None  # where its selector CNAMEs point


SENDGRID = Provider("sendgrid", "SendGrid", "sendgrid.net", ("s1", "s2"), "sendgrid.net")


def provider_for(name: str, spf_include: str | None = None) -> Provider:
    """SendGrid's needs are known; an SMTP relay's include (e.g. ``_spf.google.com``) and
    selector must be named by the clinic."""
    if name == "sendgrid":
        return SENDGRID
    return Provider(name, "your SMTP relay", spf_include, (), None)


@cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def org_domain(domain: str) -> str:
    """The organisational domain (RFC 7489 §3.2): one label below the public suffix."""
    return _psl().privatesuffix(domain.lower()) or domain.lower()


# -- SPF -------------------------------------------------------------------------------------

_COUNTED = {"include", "a", "mx", "ptr", "exists", "redirect"}


@dataclass
class SpfWalk:
    """What following a record's includes and redirects found."""

    lookups: int = 0  # DNS-querying terms, counted through every include (RFC 7208 §4.6.4)
    includes: set[str] = field(default_factory=set)  # every domain included, at any depth
    broken: list[str] = field(default_factory=list)  # included domains without one SPF record


def _spf_records(lookup: Lookup, domain: str) -> list[str]:
    return [t for t in lookup.txt(domain) if t.lower().split(" ")[0] == "v=spf1"]


def _walk_spf(lookup: Lookup, record: str, walk: SpfWalk, path: frozenset[str]) -> None:
    """Count as an evaluating receiver does: an include reached twice is evaluated (and
    counted) twice; ``path`` only stops a loop, and 10 levels stop anything deeper."""
    for term in record.split()[1:]:
        name = re.split(r"[:=/]", term.lstrip("+-~?"), maxsplit=1)[0].lower()
        if name not in _COUNTED:
            continue
        walk.lookups += 1
        if name not in ("include", "redirect"):
            continue
        target = re.split(r"[:=]", term, maxsplit=1)[-1].lower().rstrip(".")
        if "%" in target or target in path or len(path) > 10:  # macros cannot be followed here
            continue
        walk.includes.add(target)
        found = _spf_records(lookup, target)
        if len(found) != 1:
            if target not in walk.broken:
                walk.broken.append(target)
            continue
        _walk_spf(lookup, found[0], walk, path | {target})


def check_spf(lookup: Lookup, domain: str, provider: Provider) -> list[Finding]:
    records = _spf_records(lookup, domain)
    why = f"{GMAIL_YAHOO}; RFC 7208"
    include = provider.spf_include or "<your provider's SPF domain>"
    suggestion = f'{domain}. TXT "v=spf1 include:{include} ~all"'
    if not records:
        return [
            Finding(
                "spf",
                "fail",
                f"{domain} has no SPF record",
                f"{why}: without SPF, Gmail and Yahoo reject or junk bulk mail",
                suggestion,
            )
        ]
    if len(records) > 1:
        return [
            Finding(
                "spf",
                "fail",
                f"{domain} has {len(records)} SPF records; receivers treat that as an error",
                f"{why} §3.2: more than one v=spf1 record is a permanent error",
                f"merge them into one record, e.g. {suggestion}",
            )
        ]
    record = records[0]
    findings = [Finding("spf", "pass", f"SPF record: {record}")]
    terms = [t.lower() for t in record.split()[1:]]
    all_terms = [t for t in terms if t.lstrip("+-~?") == "all"]
    if any(t in ("all", "+all") for t in all_terms):
        findings.append(
            Finding(
                "spf.all",
                "fail",
                "the SPF record ends in +all: anyone on the internet may send as this domain",
                f"{why}: +all authorises every server, so SPF proves nothing and spoofed mail passes",
                f'{domain}. TXT "{record.replace("+all", "~all").replace(" all", " ~all")}"',
            )
        )
    elif not all_terms and not any(t.startswith("redirect=") for t in terms):
        findings.append(
            Finding(
                "spf.all",
                "warn",
                "the SPF record has no closing all term (unknown senders stay neutral)",
                "RFC 7208 §4.7: without an all term other servers get a neutral result",
                f'{domain}. TXT "{record} ~all"',
            )
        )
    walk = SpfWalk()
    _walk_spf(lookup, record, walk, frozenset({domain}))
    for target in walk.broken:
        findings.append(
            Finding(
                "spf.include",
                "fail",
                f"the SPF record includes {target}, which has no single SPF record",
                "RFC 7208 §5.2: an include without an SPF record is a permanent error, so SPF fails",
                f"remove include:{target} or fix that domain's record",
            )
        )
    if walk.lookups > SPF_LOOKUP_LIMIT:
        findings.append(
            Finding(
                "spf.lookups",
                "fail",
                f"the SPF record needs {walk.lookups} DNS lookups (the limit is {SPF_LOOKUP_LIMIT})",
                "RFC 7208 §4.6.4: more than 10 lookups is a permanent error, so SPF fails everywhere",
                "remove includes of services that no longer send for you, or replace them by ip4:/ip6: ranges",
            )
        )
    else:
        findings.append(
            Finding(
                "spf.lookups",
                "warn" if walk.lookups == SPF_LOOKUP_LIMIT else "pass",
                f"the SPF record needs {walk.lookups} of at most {SPF_LOOKUP_LIMIT} DNS lookups",
                "RFC 7208 §4.6.4: one more include would make SPF fail"
                if walk.lookups == SPF_LOOKUP_LIMIT
                else "",
            )
        )
    if provider.spf_include is None:
        findings.append(
            Finding(
                "spf.provider",
                "warn",
                f"cannot tell which SPF include {provider.label} needs",
                f"{why}: the servers that send for you must be authorised by SPF",
                "run clinicmail doctor --spf-include DOMAIN with the include your provider documents",
            )
        )
    elif provider.spf_include in walk.includes:
        findings.append(
            Finding(
                "spf.provider", "pass", f"SPF authorises {provider.label} ({provider.spf_include})"
            )
        )
    else:
        findings.append(
            Finding(
                "spf.provider",
                "fail",
                f"the SPF record does not include {provider.spf_include}, so {provider.label} may not send for {domain}",
                f"{why}: mail from {provider.label}'s servers fails SPF",
                f'{domain}. TXT "{_with_include(record, provider.spf_include)}"',
            )
        )
    return findings


def _with_include(record: str, include: str) -> str:
    head, *rest = record.split()
    return " ".join([head, f"include:{include}", *rest])


# -- DKIM ------------------------------------------------------------------------------------


def _has_key(lookup: Lookup, name: str) -> bool:
    return any(re.search(r"(^|;)\s*p=[A-Za-z0-9+/]", t) for t in lookup.txt(name))


def _selector_ok(lookup: Lookup, name: str) -> bool:
    """A key is published at ``name``: a TXT record with ``p=`` there, or at the end of its
    CNAME (the way SendGrid sets DKIM up). A CNAME that points nowhere publishes nothing."""
    target = lookup.cname(name)
    return _has_key(lookup, target if target is not None else name)


def dkim_domain(
    lookup: Lookup, domain: str, selectors: tuple[str, ...]
) -> tuple[str | None, list[str]]:
    """Where the selectors are published (the ``d=`` a receiver will see) and which are
    missing there. The from-domain is tried first, then its organisational domain (a provider
    that authenticated the parent domain signs with the parent)."""
    candidates = [domain] + ([org_domain(domain)] if org_domain(domain) != domain else [])
    for candidate in candidates:
        missing = [s for s in selectors if not _selector_ok(lookup, f"{s}._domainkey.{candidate}")]
        if not missing:
            return candidate, []
    missing = [s for s in selectors if not _selector_ok(lookup, f"{s}._domainkey.{domain}")]
    return None, missing


def check_dkim(
    lookup: Lookup, domain: str, provider: Provider, selectors: tuple[str, ...]
) -> tuple[list[Finding], str | None]:
    """Findings, and the signing domain found (None when DKIM is not set up)."""
    chosen = selectors or provider.dkim_selectors
    why = f"{GMAIL_YAHOO}; RFC 6376: bulk mail must be DKIM-signed by a domain aligned with From"
    if not chosen:
        return [
            Finding(
                "dkim",
                "warn",
                "no DKIM selector to check",
                why,
                "run clinicmail doctor --dkim-selector SELECTOR with the selector your provider signs with",
            )
        ], None
    signing, missing = dkim_domain(lookup, domain, chosen)
    if signing is not None:
        where = ", ".join(f"{s}._domainkey.{signing}" for s in chosen)
        return [Finding("dkim", "pass", f"DKIM keys published at {where}")], signing
    if provider.dkim_cname_suffix and not selectors:
        fix = "; ".join(
            f"{s}._domainkey.{domain}. CNAME {s}.domainkey.uNNNN.wlNNN.{provider.dkim_cname_suffix}."
            for s in missing
        )
        fix += f" (exact targets: {provider.label} → Settings → Sender Authentication)"
    else:
        fix = "; ".join(
            f'{s}._domainkey.{domain}. TXT "v=DKIM1; k=rsa; p=<public key from your provider>"'
            for s in missing
        )
    # A CNAME in place whose target has no key: say where it points, not "no record".
    dangling = [
        f"{s}._domainkey.{domain} points to {target}, which publishes no DKIM key"
        for s in missing
        if (target := lookup.cname(f"{s}._domainkey.{domain}")) is not None
    ]
    summary = f"no DKIM key for selector(s) {', '.join(missing)} at {domain}"
    return [
        Finding(
            "dkim",
            "fail",
            f"{summary} ({'; '.join(dangling)})" if dangling else summary,
            why,
            fix,
        )
    ], None


# -- DMARC -----------------------------------------------------------------------------------


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = value.strip()
    return tags


def check_dmarc(
    lookup: Lookup, domain: str, signing: str | None, *, dkim_checked: bool = True
) -> list[Finding]:
    """The DMARC record (at the from-domain, else its organisational domain) and whether the
    DKIM signing domain found (``signing``) aligns with From under its ``adkim`` mode."""
    org = org_domain(domain)
    why = f"{GMAIL_YAHOO}; RFC 7489"
    suggestion = f'_dmarc.{org}. TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{org}; adkim=r; aspf=r"'
    found_at = domain
    records = [t for t in lookup.txt(f"_dmarc.{domain}") if t.lower().startswith("v=dmarc1")]
    if not records and org != domain:
        found_at = org
        records = [t for t in lookup.txt(f"_dmarc.{org}") if t.lower().startswith("v=dmarc1")]
    findings: list[Finding] = []
    if not records:
        findings.append(
            Finding(
                "dmarc",
                "fail",
                f"no DMARC record at _dmarc.{domain}",
                f"{why}: bulk senders must publish DMARC (p=none at least) or their mail is rejected",
                suggestion,
            )
        )
        tags: dict[str, str] = {}
    elif len(records) > 1:
        return [
            Finding(
                "dmarc",
                "fail",
                f"_dmarc.{found_at} has {len(records)} DMARC records; receivers ignore them all",
                f"{why} §6.6.3: more than one record means no DMARC policy",
                f"keep one, e.g. {suggestion}",
            )
        ]
    else:
        record = records[0]
        tags = _tags(record)
        findings.append(Finding("dmarc", "pass", f"DMARC record at _dmarc.{found_at}: {record}"))
        policy = tags.get("sp") if found_at != domain and "sp" in tags else tags.get("p")
        if policy not in ("none", "quarantine", "reject"):
            findings.append(
                Finding(
                    "dmarc.policy",
                    "fail",
                    f"the DMARC record has no valid policy (p={policy or ''})",
                    f"{why} §6.3: p= is required and must be none, quarantine or reject",
                    suggestion,
                )
            )
        elif policy == "none":
            findings.append(
                Finding(
                    "dmarc.policy",
                    "warn",
                    "DMARC policy is p=none: receivers are told to do nothing with spoofed mail",
                    f"{GMAIL_YAHOO} accept p=none as the minimum, but it protects nobody who "
                    "receives mail forged in the clinic's name",
                    f"{suggestion} (once the rua reports show only your own mail)",
                )
            )
        else:
            findings.append(Finding("dmarc.policy", "pass", f"DMARC policy is {policy}"))
        if "rua" not in tags:
            findings.append(
                Finding(
                    "dmarc.reports",
                    "warn",
                    "the DMARC record asks for no aggregate reports (no rua=)",
                    "RFC 7489 §7.2: without reports nobody sees who sends mail in the clinic's name, "
                    "or whether the clinic's own mail passes",
                    f"add rua=mailto:dmarc-reports@{org} to the record at _dmarc.{found_at}",
                )
            )
    if dkim_checked:
        findings.append(_alignment(domain, signing, tags.get("adkim", "r").lower()))
    else:
        findings.append(
            Finding(
                "dmarc.alignment",
                "warn",
                "DKIM alignment not checked: no DKIM selector is known",
                f"{GMAIL_YAHOO}; RFC 7489 §3.1: DMARC passes only when the DKIM (or SPF) domain "
                "aligns with the From domain",
                "run clinicmail doctor --dkim-selector SELECTOR",
            )
        )
    return findings


def _alignment(domain: str, signing: str | None, mode: str) -> Finding:
    why = (
        f"{GMAIL_YAHOO}; RFC 7489 §3.1: DMARC passes only when the DKIM (or SPF) domain aligns "
        "with the From domain"
    )
    strict = mode == "s"
    if signing is None:
        return Finding(
            "dmarc.alignment",
            "fail",
            f"no DKIM key for {domain} or its parent domain, so no signature can align with From",
            why,
            "publish the DKIM records named under dkim",
        )
    aligned = signing == domain if strict else org_domain(signing) == org_domain(domain)
    if aligned:
        return Finding(
            "dmarc.alignment",
            "pass",
            f"DKIM signing domain {signing} aligns with From {domain} ({'strict' if strict else 'relaxed'})",
        )
    return Finding(
        "dmarc.alignment",
        "fail",
        f"DKIM signs as {signing}, which does not align with From {domain} under "
        f"{'strict (adkim=s)' if strict else 'relaxed'} DMARC alignment",
        why,
        f"authenticate {domain} itself with your provider (selector records at "
        f"<selector>._domainkey.{domain}), or relax the DMARC record to adkim=r",
    )


# -- MX --------------------------------------------------------------------------------------


def check_mx(lookup: Lookup, domain: str) -> list[Finding]:
    records = lookup.mx(domain)
    why = (
        "RFC 5321 §5.1 and RFC 7505: bounces and replies to the From domain need a mail server; "
        "receivers distrust From domains that cannot receive mail"
    )
    fix = f"{domain}. MX 10 <the mail server that receives your replies>."
    if not records:
        return [Finding("mx", "fail", f"{domain} has no MX record", why, fix)]
    if records == [(0, "")] or all(host in ("", ".") for _, host in records):
        return [
            Finding("mx", "fail", f"{domain} has a null MX: it says it accepts no mail", why, fix)
        ]
    hosts = ", ".join(host for _, host in records)
    return [Finding("mx", "pass", f"{domain} receives mail at {hosts}")]


def check_domain(
    lookup: Lookup, domain: str, provider: Provider, selectors: tuple[str, ...] = ()
) -> list[Finding]:
    """Every DNS check for ``domain``, in the order a clinic should fix them; a domain that
    does not exist is one finding (nothing can be published under it)."""
    if not lookup.exists(domain):
        return [
            Finding(
                "dns.domain",
                "fail",
                f"{domain} does not exist in DNS, so it can have no SPF, DKIM, DMARC or MX record",
                f"{GMAIL_YAHOO}: receivers reject mail from a domain that does not resolve",
                "CLINICMAIL_FROM_EMAIL=<an address at the clinic's own, registered domain> "
                "(or register this domain and publish its records)",
            )
        ]
    findings = check_spf(lookup, domain, provider)
    dkim, signing = check_dkim(lookup, domain, provider, selectors)
    findings += dkim
    checked = bool(selectors or provider.dkim_selectors)
    findings += check_dmarc(lookup, domain, signing, dkim_checked=checked)
    findings += check_mx(lookup, domain)
    return findings
