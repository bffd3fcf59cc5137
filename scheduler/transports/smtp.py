"""The ``smtp`` transport: ``smtp://user:pass@host:port`` (STARTTLS when offered) or ``smtps://``."""

from __future__ import annotations

import smtplib
import ssl
from urllib.parse import unquote, urlsplit

from scheduler.transports.base import (
    Batch,
    Envelope,
    Outcome,
    Result,
    Settler,
    Transport,
    TransportConfigError,
)
from scheduler.transports.mime import build_message
from scheduler.transports.verdicts import Verdict, build_verdict, smtp_exception_verdict


class SMTPTransport(Transport):
    name = "smtp"
    max_batch = 100
    settles_each = True

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise TransportConfigError(
                "CLINICMAIL_SMTP_URL must look like smtp://user:pass@host:587"
            )
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 587)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            try:
                self._conn.noop()
                return self._conn
            except smtplib.SMTPException:
                self._conn = None
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if self.tls:
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            conn.ehlo()
            if conn.has_extn("starttls"):
                conn.starttls(context=context)
                conn.ehlo()
        if self.user:
            conn.login(self.user, self.password or "")
        self._conn = conn
        return conn

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
