"""The ``sendgrid`` transport: one ``/v3/mail/send`` request per batch of up to 1000 recipients.

The body is built as a plain dict (docs/architecture.md, invariant 5) and posted through the official client.
Per-recipient values travel as ``substitutions``, ``headers`` and ``custom_args`` in
``personalizations``. Categories and custom_args carry opaque ids only (campaign id, step id,
send id): SendGrid keeps them for ever and treats them as non-personal.
"""

from __future__ import annotations

import http.client
import logging
import ssl
from typing import Any
from urllib.error import URLError

import orjson
import sendgrid
from python_http_client import exceptions as sg_errors

from templates.render import substitutions
from transports.base import (
    Batch,
    Outcome,
    Result,
    Settler,
    Transport,
    TransportConfigError,
)
from transports.verdicts import Verdict, sendgrid_verdict

# The SDK logs full request bodies at DEBUG; they hold addresses and names. Never let them out.
logging.getLogger("python_http_client").setLevel(logging.WARNING)

DEFAULT_TIMEOUT = 30.0
JSON_UTF8 = "application/json; charset=utf-8"


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class SendGridTransport(Transport):
    name = "sendgrid"
    max_batch = 1000

    def __init__(
        self,
        api_key: str,
        host: str = "https://api.sendgrid.com",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        click_tracking: bool = False,
    ) -> None:
        if not api_key:
            raise TransportConfigError("SENDGRID_API_KEY is required for the sendgrid transport")
        self.client = sendgrid.SendGridAPIClient(api_key=api_key, host=host)
        # The SDK's own seam for a ready-made body: with a Content-Type other than the bare
        # "application/json" it posts a string request_body as is instead of running stdlib
        # json.dumps over it, so the body is encoded once, by orjson (about 1 MB for 1,000
        # recipients). The media type is the same JSON, with its charset said out loud.
        self.client.client.request_headers["Content-Type"] = JSON_UTF8
        self.timeout = timeout
        self.click_tracking = click_tracking

    def body(self, batch: Batch) -> dict[str, Any]:
        r = batch.rendered
        return {
            "from": {"email": batch.from_email, "name": batch.from_name},
            "subject": r.subject,
            "content": [
                {"type": "text/plain", "value": r.text},
                {"type": "text/html", "value": r.html},
            ],
            "personalizations": [
                {
                    "to": [{"email": env.to}],
                    "substitutions": substitutions(env.values),
                    "headers": env.headers,
                    "custom_args": {"send_id": env.send_id},
                }
                for env in batch.recipients
            ],
            "headers": batch.headers,
            "categories": [batch.category],
            "custom_args": batch.custom_args,
            # Health-topic URLs stay on the clinic's own domain unless the clinic opts in.
            "tracking_settings": {
                "click_tracking": {"enable": self.click_tracking, "enable_text": False},
                "open_tracking": {"enable": True},
            },
        }

    def send(self, batch: Batch, settler: Settler | None = None) -> list[Result]:
        if len(batch.recipients) > self.max_batch:
            raise ValueError(f"a SendGrid request takes at most {self.max_batch} recipients")
        verdict, per_recipient, provider_id = self._post(self.body(batch))
        results = []
        for i, env in enumerate(batch.recipients):
            v = per_recipient.get(i, verdict)
            results.append(
                Result(
                    env.send_id,
                    v.outcome,
                    provider_id=provider_id if v.outcome is Outcome.SENT else None,
                    error=None if v.outcome is Outcome.SENT else v.reason,
                    retry_after=v.retry_after,
                    fix=v.fix,
                )
            )
        return results

    def _post(self, body: dict[str, Any]) -> tuple[Verdict, dict[int, Verdict], str | None]:
        try:
            response = self.client.client.mail.send.post(
                request_body=orjson.dumps(body).decode(), timeout=self.timeout
            )
        except sg_errors.HTTPError as exc:
            verdict, per_recipient = sendgrid_verdict(
                int(exc.status_code), exc.body, _retry_after(exc.headers)
            )
            return verdict, per_recipient, None
        except URLError as exc:
            # Raised before the request was written (refused, DNS, connect timeout): safe to retry.
            reason = exc.reason
            if isinstance(reason, ssl.SSLError):
                fix = "TLS to CLINICMAIL_SENDGRID_HOST failed: check the host and its certificate"
                return Verdict(Outcome.ACCOUNT, "TLS refused", fix), {}, None
            return Verdict(Outcome.RETRY, f"connection failed: {type(reason).__name__}"), {}, None
        except (TimeoutError, http.client.RemoteDisconnected, ConnectionResetError) as exc:
            # The request may have reached SendGrid: its fate is settled by a webhook event.
            return (
                Verdict(Outcome.UNKNOWN, f"no answer after the request was sent: {exc!r}"),
                {},
                None,
            )
        status = int(response.status_code)
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        verdict, per_recipient = sendgrid_verdict(status)
        return verdict, per_recipient, message_id

    def scopes(self) -> list[str] | Verdict:
        """``GET /v3/scopes``: the key's permissions, or what SendGrid's refusal means;
        authenticated and free of side effects (``clinicmail doctor``). The network failing
        raises as it found it (the caller says it could not reach SendGrid)."""
        try:
            response = self.client.client.scopes.get(timeout=self.timeout)
        except sg_errors.HTTPError as exc:
            return sendgrid_verdict(int(exc.status_code), exc.body)[0]
        data = orjson.loads(response.body or b"{}")
        scopes = data.get("scopes") if isinstance(data, dict) else None
        return [str(s) for s in scopes] if isinstance(scopes, list) else []
