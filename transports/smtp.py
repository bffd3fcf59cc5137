"""The ``smtp`` transport: ``smtps://user:pass@host:465`` (implicit TLS) or
``smtp://user:pass@host:587`` (STARTTLS, required).

TLS policy, decided where the connection is made:

* ``smtps://``: TLS from the first byte, the server's certificate verified.
* ``smtp://`` to any host but loopback: STARTTLS is required before anything else is said (no
  credential, no message is ever sent in clear); a server that does not offer it, or whose
  certificate does not verify, is refused with :class:`TLSRequired`.
* ``smtp://`` to a loopback host (``127.0.0.0/8``, ``::1``, ``localhost``): a relay on the same
  machine; STARTTLS is used when offered, and plain SMTP is accepted (nothing leaves the host).
* ``smtp://…?tls=required``: STARTTLS required whatever the host, loopback included.
* ``smtp://…?tls=off``: the documented opt-out for a relay on a trusted network that cannot
  speak TLS; plain SMTP, no STARTTLS, logged at WARNING when the transport is made.
"""

from __future__ import annotations

import ipaddress
import logging
import smtplib
import ssl
from functools import cached_property
from urllib.parse import parse_qs, unquote, urlsplit

from transports.base import (
    Batch,
    Envelope,
    Outcome,
    Result,
    Settler,
    Transport,
    TransportConfigError,
)
from transports.mime import build_message
from transports.verdicts import Verdict, build_verdict, smtp_exception_verdict

log = logging.getLogger("clinicmail.smtp")

URL_SHAPE = "CLINICMAIL_SMTP_URL must look like smtp://user:pass@host:587"


class TLSRequired(TransportConfigError, smtplib.SMTPException):
    """The SMTP server cannot give the TLS this URL requires: nothing was sent. Also an
    ``smtplib.SMTPException``, so a send that meets it is retried, never lost."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


TLS_MODES = ("required", "off")


def tls_mode(url: str) -> str | None:
    """The URL's ``?tls=`` option: ``"required"``, ``"off"`` or None (not given). Raises
    :class:`TransportConfigError` for any other value or ``off`` with ``smtps://``."""
    parts = urlsplit(url)
    values = parse_qs(parts.query, keep_blank_values=True).get("tls", [])
    if not values:
        return None
    if len(values) != 1 or values[0] not in TLS_MODES:
        raise TransportConfigError(
            "CLINICMAIL_SMTP_URL: the tls option is ?tls=required or ?tls=off"
        )
    if parts.scheme == "smtps" and values[0] == "off":
        raise TransportConfigError("CLINICMAIL_SMTP_URL: ?tls=off cannot go with smtps://")
    return values[0]


class SMTPTransport(Transport):
    name = "smtp"
    max_batch = 100
    settles_each = True

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise TransportConfigError(URL_SHAPE)
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 587)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        mode = tls_mode(url)
        self.plain = mode == "off"
        self.starttls_required = not self.tls and (
            mode == "required" or (mode is None and not is_loopback(self.host))
        )
        if self.plain:
            log.warning(
                "SMTP to %s:%d without TLS (CLINICMAIL_SMTP_URL has ?tls=off): messages%s "
                "cross the network in clear",
                self.host,
                self.port,
                " and the password" if self.user else "",
            )
        self._conn: smtplib.SMTP | None = None

    @cached_property
    def context(self) -> ssl.SSLContext:
        """The TLS settings, made on first use: loading the system's certificate authorities
        takes tens of milliseconds, for nothing where TLS is never used (a loopback relay)."""
        return ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            try:
                self._conn.noop()
                return self._conn
            except smtplib.SMTPException:
                self._conn = None
        conn: smtplib.SMTP
        if self.tls:
            conn = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.context
            )
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                self._starttls(conn)
            except BaseException:
                conn.close()
                raise
        if self.user:
            conn.login(self.user, self.password or "")
        self._conn = conn
        return conn

    def _starttls(self, conn: smtplib.SMTP) -> None:
        """Upgrade a plain connection as the policy says (module docstring)."""
        if self.plain:
            return
        conn.ehlo()
        if not conn.has_extn("starttls"):
            if self.starttls_required:
                raise TLSRequired(
                    f"the SMTP server {self.host}:{self.port} does not offer STARTTLS, so "
                    "nothing was sent: use smtps:// (port 465), a server with STARTTLS, or add "
                    "?tls=off to CLINICMAIL_SMTP_URL to send in clear on a trusted network"
                )
            return
        try:
            conn.starttls(context=self.context)
        except ssl.SSLError as exc:
            raise TLSRequired(
                f"TLS with the SMTP server {self.host}:{self.port} failed ({exc.reason or exc}), so "
                "nothing was sent: check its certificate"
            ) from None
        conn.ehlo()

    def send(self, batch: Batch, settler: Settler | None = None) -> list[Result]:
        """One message per recipient over one connection. Each outcome goes to ``settler`` as
        its reply arrives; after an account or configuration refusal (authentication, TLS) the
        rest of the batch is not tried and comes back ``ACCOUNT`` too."""
        results: list[Result] = []
        blocked: Result | None = None
        for env in batch.recipients:
            if blocked is not None:
                result = Result(env.send_id, Outcome.ACCOUNT, error=blocked.error, fix=blocked.fix)
            else:
                result = self._one(batch, env, settler)
                if result.outcome is Outcome.ACCOUNT:
                    blocked = result
            results.append(result)
            if settler is not None:
                settler.settled(result)
        return results

    def _one(self, batch: Batch, env: Envelope, settler: Settler | None) -> Result:
        try:
            msg = build_message(batch, env)
            msg.as_bytes()  # a header the library cannot write fails here, not mid-DATA
        except Exception as exc:
            return _result(env, build_verdict(exc))
        try:
            conn = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            self._conn = None
            return _result(env, smtp_exception_verdict(exc, "connect"))
        if settler is not None:
            settler.starting(env.send_id)
        try:
            conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            return _result(env, smtp_exception_verdict(exc, "rcpt"))
        except smtplib.SMTPSenderRefused as exc:
            return _result(env, smtp_exception_verdict(exc, "mail"))
        except smtplib.SMTPResponseException as exc:
            return _result(env, smtp_exception_verdict(exc, "data"))
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._conn = None
            return _result(env, Verdict(Outcome.UNKNOWN, f"no answer: {type(exc).__name__}"))
        return Result(env.send_id, Outcome.SENT, provider_id=str(msg["Message-ID"]))

    def verify(self) -> None:
        """Connect, STARTTLS and log in, then QUIT: no MAIL command (``clinicmail doctor``).
        Raises what :mod:`smtplib` raises."""
        try:
            self._connect()
        finally:
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._conn = None


def _result(env: Envelope, verdict: Verdict) -> Result:
    return Result(
        env.send_id,
        verdict.outcome,
        error=verdict.reason,
        retry_after=verdict.retry_after,
        fix=verdict.fix,
    )
