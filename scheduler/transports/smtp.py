"""The ``smtp`` transport: ``smtp://user:pass@host:port`` (STARTTLS when offered) or ``smtps://``."""

from __future__ import annotations

import smtplib
import ssl
from urllib.parse import unquote, urlsplit

from scheduler.transports.base import Batch, Outcome, Result, Transport, TransportConfigError
from scheduler.transports.mime import build_message


class SMTPTransport(Transport):
    name = "smtp"
    max_batch = 100

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

    def send(self, batch: Batch) -> list[Result]:
        results: list[Result] = []
        for env in batch.recipients:
            msg = build_message(batch, env)
            try:
                conn = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                results.append(Result(env.send_id, Outcome.RETRY, error=f"cannot connect: {exc}"))
                continue
            try:
                conn.send_message(msg)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [c for c, _ in exc.recipients.values()]
                outcome = Outcome.RETRY if all(400 <= c < 500 for c in codes) else Outcome.FAILED
                results.append(Result(env.send_id, outcome, error=f"recipient refused: {codes}"))
            except smtplib.SMTPResponseException as exc:
                outcome = Outcome.RETRY if 400 <= exc.smtp_code < 500 else Outcome.FAILED
                results.append(Result(env.send_id, outcome, error=f"SMTP {exc.smtp_code}"))
            except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
                self._conn = None
                results.append(Result(env.send_id, Outcome.UNKNOWN, error=f"no answer: {exc!r}"))
            else:
                results.append(
                    Result(env.send_id, Outcome.SENT, provider_id=str(msg["Message-ID"]))
                )
        return results

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._conn = None
