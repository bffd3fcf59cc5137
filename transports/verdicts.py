"""What every provider answer means: the one place SendGrid v3 status codes and error bodies and
SMTP reply codes (with their RFC 3463 enhanced status codes) become an :class:`Outcome`.

The classes, and what dispatch does with each:

=====================  ==============================================  ==========================
outcome                meaning                                         dispatch
=====================  ==============================================  ==========================
``SENT``               the provider accepted the email                 ``sent``; the cap moves
``FAILED``             this recipient, for good (hard bounce, an       ``failed``; the address is
                       address the provider calls invalid)             suppressed as for a bounce
``REJECTED``           this message, for good (content the provider    the email (campaign, step,
                       or the email library refuses: a bad header,     variant) is set aside with a
                       too large, refused as content)                  staff alert; rows wait
``ACCOUNT``            the account or configuration (401, 403, an      sending pauses for everyone;
                       unverified sender, SMTP authentication or TLS   rows go back to ``pending``
                       refused)                                        untouched; loud everywhere
``RETRY``              transient (429, 5xx, SMTP 4xx, refused or       back-off, as before
                       timed-out connections before the request)
``UNKNOWN``            the request left and no answer came             reconciled, never resent
                                                                       blindly
=====================  ==============================================  ==========================

A :class:`Verdict` carries a short ``reason`` built from codes and our own words (never a
provider body, which can echo addresses) and, for ``ACCOUNT``, the ``fix`` an operator must make.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from typing import Any

import orjson

from transports.base import Outcome, TransportConfigError


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    fix: str | None = None  # ACCOUNT only: the one line that says what to fix
    retry_after: float | None = None


# -- SendGrid v3 --------------------------------------------------------------------------------

SENDGRID_KEY_FIX = "SendGrid refused the API key (HTTP 401): set SENDGRID_API_KEY to a valid key"
SENDGRID_SENDER_FIX = (
    "SendGrid refused the sender (HTTP 403): verify CLINICMAIL_FROM_EMAIL (or its domain) under "
    "Sender Authentication in SendGrid"
)
SENDGRID_SCOPE_FIX = (
    "SendGrid refused the request (HTTP 403): give the key in SENDGRID_API_KEY the Mail Send "
    "permission, and check the account is active"
)
_PERSONALIZATION = re.compile(r"^personalizations\.(\d+)\.(to|cc|bcc)\b")


def sendgrid_errors(body: Any) -> list[dict[str, str]]:
    """The ``errors`` list of a SendGrid error body (``[{"message", "field", …}]``); [] when
    the body is not one."""
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [
        {k: str(v) for k, v in e.items() if isinstance(v, str | int)}
        for e in errors
        if isinstance(e, dict)
    ]


def sendgrid_verdict(
    status: int, body: Any = None, retry_after: float | None = None
) -> tuple[Verdict, dict[int, Verdict]]:
    """The verdict on a ``/v3/mail/send`` answer for the whole request, and the verdicts that
    differ for single personalizations (by index): a 400 naming ``personalizations.3.to``
    fails that recipient and lets the others go again."""
    if 200 <= status < 300:
        return Verdict(Outcome.SENT, f"HTTP {status}"), {}
    if status == 429 or status >= 500:
        return Verdict(Outcome.RETRY, f"HTTP {status}", retry_after=retry_after), {}
    errors = sendgrid_errors(body)
    text = " ".join(e.get("message", "") for e in errors).lower()
    if status == 401:
        return Verdict(Outcome.ACCOUNT, "HTTP 401", SENDGRID_KEY_FIX), {}
    if status == 403:
        sender = any(w in text for w in ("sender identity", "from address", "verified"))
        fix = SENDGRID_SENDER_FIX if sender else SENDGRID_SCOPE_FIX
        return Verdict(Outcome.ACCOUNT, "HTTP 403", fix), {}
    if status in (404, 405):
        return (
            Verdict(
                Outcome.ACCOUNT,
                f"HTTP {status}",
                f"SendGrid answered HTTP {status} for /v3/mail/send: check CLINICMAIL_SENDGRID_HOST",
            ),
            {},
        )
    if status == 413:
        return Verdict(Outcome.REJECTED, "HTTP 413: the message is too large"), {}
    if status == 400:
        fields = [e.get("field", "") for e in errors]
        if any(f == "from" or f.startswith("from.") for f in fields):
            fix = "SendGrid refused the sender address (HTTP 400): check CLINICMAIL_FROM_EMAIL"
            return Verdict(Outcome.ACCOUNT, "HTTP 400 (from)", fix), {}
        bad: dict[int, Verdict] = {}
        for field in fields:
            match = _PERSONALIZATION.match(field)
            if match:
                bad[int(match.group(1))] = Verdict(
                    Outcome.FAILED, "HTTP 400: SendGrid calls the address invalid"
                )
        if bad and len(bad) == len(fields):
            # Only recipients were wrong: the rest of the request was never sent; retry them.
            return Verdict(Outcome.RETRY, "HTTP 400: another recipient was refused"), bad
        named = ", ".join(sorted({f for f in fields if f})) or "the request body"
        return Verdict(Outcome.REJECTED, f"HTTP 400: SendGrid refused {named}"[:200]), {}
    return Verdict(Outcome.REJECTED, f"HTTP {status}"), {}


# -- SMTP (RFC 5321 reply codes, RFC 3463 enhanced status codes) --------------------------------

SMTP_AUTH_FIX = (
    "the SMTP server refused the login: check the user and password in CLINICMAIL_SMTP_URL"
)
SMTP_TLS_FIX = (
    "the SMTP server's TLS could not be set up: check the host and port in CLINICMAIL_SMTP_URL "
    "and the server's certificate"
)
SMTP_SENDER_FIX = (
    "the SMTP server refused the sender: check CLINICMAIL_FROM_EMAIL is allowed to send"
)
SMTP_RELAY_FIX = (
    "the SMTP server refuses to relay for this sender: check the login in CLINICMAIL_SMTP_URL"
)
_ENHANCED = re.compile(rb"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_code(message: bytes | str | None) -> tuple[int, int, int] | None:
    """The RFC 3463 code at the start of an SMTP reply text (``5.1.1 no such user``)."""
    if message is None:
        return None
    raw = message.encode("utf-8", "replace") if isinstance(message, str) else message
    match = _ENHANCED.match(raw)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _label(code: int, enhanced: tuple[int, int, int] | None) -> str:
    return f"SMTP {code}" + (" {}.{}.{}".format(*enhanced) if enhanced else "")


def smtp_verdict(stage: str, code: int, message: bytes | str | None = None) -> Verdict:
    """The verdict on an SMTP reply ``code`` at ``stage`` (``auth``, ``mail``, ``rcpt``,
    ``data``). 4xx is transient at every stage; what a 5xx means depends on the stage and on
    the enhanced code's subject (x.1 addressing, x.2 mailbox, x.3 mail system, x.5 protocol,
    x.6 content, x.7 security or policy)."""
    enhanced = enhanced_code(message)
    label = _label(code, enhanced)
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message or ""
    if 400 <= code < 500:
        return Verdict(Outcome.RETRY, label)
    if stage == "auth" or code in (530, 534, 535, 538):
        return Verdict(Outcome.ACCOUNT, label, SMTP_AUTH_FIX)
    subject = enhanced[1] if enhanced else None
    if stage == "mail":
        if subject == 1 or subject == 7 or code == 553:
            return Verdict(Outcome.ACCOUNT, label, SMTP_SENDER_FIX)
        return Verdict(Outcome.REJECTED, label)
    if stage == "rcpt":
        if "relay" in text.lower():
            return Verdict(Outcome.ACCOUNT, label, SMTP_RELAY_FIX)
        return Verdict(Outcome.FAILED, label)
    # DATA (and anything after it): the content, size or policy of this message.
    return Verdict(Outcome.REJECTED, label)


def smtp_exception_verdict(exc: BaseException, stage: str) -> Verdict:
    """The verdict on what :mod:`smtplib` raised at ``stage`` (``connect`` covers the greeting,
    STARTTLS and login)."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Verdict(Outcome.ACCOUNT, _label(exc.smtp_code, None), SMTP_AUTH_FIX)
    if isinstance(exc, TransportConfigError):  # the TLS policy refused to go on (smtp.TLSRequired)
        return Verdict(Outcome.ACCOUNT, "TLS required", str(exc))
    if isinstance(exc, ssl.SSLError | smtplib.SMTPNotSupportedError):
        return Verdict(Outcome.ACCOUNT, f"TLS: {type(exc).__name__}", SMTP_TLS_FIX)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return smtp_verdict("mail", exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        code, message = replies[0] if replies else (550, b"")
        return smtp_verdict("rcpt", code, message)
    if isinstance(exc, smtplib.SMTPResponseException):
        return smtp_verdict("auth" if stage == "connect" else stage, exc.smtp_code, exc.smtp_error)
    if isinstance(exc, TimeoutError | smtplib.SMTPServerDisconnected) and stage == "data":
        return Verdict(Outcome.UNKNOWN, f"no answer: {type(exc).__name__}")
    return Verdict(Outcome.RETRY, f"cannot connect: {type(exc).__name__}")


def build_verdict(exc: BaseException) -> Verdict:
    """The email library refused to build the message (a header with a line break, a value it
    cannot encode): this message, for good."""
    return Verdict(
        Outcome.REJECTED, f"the email library refused the message ({type(exc).__name__})"
    )
