"""One raw message checked line by line, as receivers and filters read it.

- RFC 5322 §2.1.1: no line over 998 characters; §3.3: a ``Date`` with a real zone (``-0000``
  means "unknown"); CRLF line ends.
- RFC 2045 §6.7/§6.8: quoted-printable and base64 lines at most 76 characters.
- RFC 2045 §4: one ``MIME-Version``, at the top.
- A ``Message-ID`` on the sender's domain, a text/plain and a text/html part.
- RFC 8058 and Gmail/Yahoo bulk-sender rules: list mail carries ``List-Unsubscribe`` (one line,
  an https URL) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email import policy as email_policy
from email.utils import parsedate_to_datetime

from deliverability.domain import GMAIL_YAHOO
from deliverability.findings import Finding

_MSGID = re.compile(r"^<[^<>@\s]+@([^<>@\s]+)>$")
# The one rule a message breaks because of a setting (the links' base URL), not how it is built.
HTTP_UNSUBSCRIBE = "List-Unsubscribe is a plain http URL, because CLINICMAIL_BASE_URL is not https"


def message_problems(raw: bytes, *, from_domain: str, list_mail: bool) -> list[str]:
    """Every rule above that ``raw`` breaks; empty when it keeps them all."""
    head, sep, _ = raw.partition(b"\r\n\r\n")
    if not sep:
        return ["no blank CRLF line between the headers and the body"]
    problems: list[str] = []
    if re.search(rb"(?<!\r)\n", raw):
        problems.append("bare LF line endings (SMTP needs CRLF)")
    header_lines = head.split(b"\r\n")
    if any(len(line) > 998 for line in header_lines):
        problems.append("a header line is longer than 998 characters")
    if len(re.findall(rb"(?im)^MIME-Version:", raw)) != 1:
        problems.append("MIME-Version appears more than once (it belongs at the top only)")
    msg = message_from_bytes(raw, policy=email_policy.default)
    match = _MSGID.match(str(msg.get("Message-ID", "")))
    if match is None or match[1].lower() != from_domain.lower():
        problems.append(f"Message-ID is not on {from_domain}")
    date = str(msg.get("Date", ""))
    try:
        zoned = parsedate_to_datetime(date).tzinfo is not None
    except (TypeError, ValueError):
        zoned = False
    if not zoned or date.endswith("-0000"):
        problems.append(f"Date {date!r} has no real zone")
    leaves = [p for p in msg.walk() if not p.is_multipart()]
    if sorted(p.get_content_type() for p in leaves) != ["text/html", "text/plain"]:
        problems.append("not exactly one text/plain and one text/html part")
    for part in leaves:
        cte = str(part.get("Content-Transfer-Encoding", "7bit")).lower()
        limit = 76 if cte in ("quoted-printable", "base64") else 998
        payload = part.get_payload()
        if isinstance(payload, str) and any(len(x) > limit for x in payload.splitlines()):
            problems.append(f"{part.get_content_type()} has {cte} lines over {limit} characters")
    unsubscribe = [str(v) for v in msg.get_all("List-Unsubscribe") or []]
    one_click = [str(v) for v in msg.get_all("List-Unsubscribe-Post") or []]
    if list_mail:
        if len(unsubscribe) == 1 and unsubscribe[0].startswith("<http://"):
            problems.append(HTTP_UNSUBSCRIBE)
        elif len(unsubscribe) != 1 or not unsubscribe[0].startswith("<https://"):
            problems.append("no List-Unsubscribe header with an https URL")
        elif any(
            line.lower().startswith(b"list-unsubscribe:")
            and i + 1 < len(header_lines)
            and header_lines[i + 1][:1] in (b" ", b"\t")
            for i, line in enumerate(header_lines)
        ):
            problems.append("List-Unsubscribe is folded over several lines")
        if one_click != ["List-Unsubscribe=One-Click"]:
            problems.append("no List-Unsubscribe-Post: List-Unsubscribe=One-Click header")
    elif unsubscribe or one_click:
        problems.append("List-Unsubscribe headers on mail that is not list mail")
    return problems


def check_message(raw: bytes, *, from_domain: str, list_mail: bool, label: str) -> Finding:
    problems = message_problems(raw, from_domain=from_domain, list_mail=list_mail)
    if not problems:
        return Finding("message", "pass", f"{label} keeps RFC 5322, 2045 and 8058")
    fixes = []
    if HTTP_UNSUBSCRIBE in problems:  # the operator's setting: say which
        fixes.append("set CLINICMAIL_BASE_URL to the https address the service is reached at")
    if any(p != HTTP_UNSUBSCRIBE for p in problems):
        fixes.append(
            "upgrade clinicmail or report this as a bug: messages are built by the service"
        )
    return Finding(
        "message",
        "fail",
        f"{label}: " + "; ".join(problems),
        f"RFC 5322, RFC 2045, RFC 8058; {GMAIL_YAHOO} (one-click unsubscribe)",
        "; ".join(fixes),
    )
