"""``POST /webhooks/sendgrid``: verify, store, acknowledge, then process (DESIGN.md invariant 6).

* With ``CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY`` set, the ECDSA signature in
  ``X-Twilio-Email-Event-Webhook-Signature`` must verify over ``timestamp + raw body`` (checked by
  the ``sendgrid`` package's ``EventWebhook``); anything missing, malformed or forged is 403 and
  nothing is stored. The raw bytes are verified, never a re-serialisation of the parsed JSON.
* A body that is not a JSON array of objects is 400.
* Accepted events are stored (deduplicated) and the answer is 200 at once; they are applied by a
  background task right after the response, and in any case by the next tick.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from engagement.ingest import BadBatch, parse_sendgrid, store
from engagement.process import apply_pending
from storage import Database, utcnow

log = logging.getLogger("clinicmail.webhooks")

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_BODY = 16 * 1024 * 1024  # SendGrid batches are far smaller; refuse absurd bodies early


class SignatureVerifier:
    """Checks SendGrid's signed Event Webhook headers against the configured public key.

    ``public_key`` is what SendGrid shows: base64 DER (SubjectPublicKeyInfo); a full PEM block is
    accepted too. An unusable key refuses every post (fail closed) rather than accept unsigned ones.
    """

    def __init__(self, public_key: str) -> None:
        from sendgrid.helpers.eventwebhook import EventWebhook

        text = public_key.strip()
        if text.startswith("-----BEGIN"):
            text = "".join(line for line in text.splitlines() if not line.startswith("-----"))
        self._webhook: Any = None
        try:
            self._webhook = EventWebhook(text)
        except (ValueError, TypeError):
            log.error("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key")

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> bool:
        if self._webhook is None or not signature or not timestamp:
            return False
        try:
            base64.b64decode(signature, validate=True)
            payload = body.decode("utf-8")
            return bool(self._webhook.verify_signature(payload, signature, timestamp))
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
            return False
        except Exception:  # the SDK may raise anything on a malformed DER signature: still a 403
            return False


def sendgrid_router(
    db: Database,
    public_key: str | None,
    *,
    apply: Callable[[], object] | None = None,
) -> APIRouter:
    """The webhook route. ``apply`` runs after each accepted batch (default: apply pending events)."""
    verifier = SignatureVerifier(public_key) if public_key and public_key.strip() else None
    router = APIRouter(tags=["webhooks"])

    def apply_now() -> None:
        try:
            if apply is not None:
                apply()
            else:
                apply_pending(db.begin, utcnow())
        except Exception as exc:  # the next tick applies them anyway; never crash the server
            log.error("applying webhook events failed: %s", type(exc).__name__)

    def ingest(body: bytes) -> tuple[int, int]:
        events = parse_sendgrid(body)
        with db.begin() as conn:
            stored = store(conn, events, utcnow())
        return len(events), stored

    @router.post("/webhooks/sendgrid", summary="SendGrid Event Webhook batches")
    async def receive(request: Request, background: BackgroundTasks) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            return JSONResponse({"detail": "body too large"}, status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"detail": "body too large"}, status_code=413)
        if verifier is not None and not verifier.verify(
            body, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER)
        ):
            return JSONResponse({"detail": "invalid or missing signature"}, status_code=403)
        try:
            received, stored = await run_in_threadpool(ingest, body)
        except BadBatch as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if stored:
            background.add_task(apply_now)
        return JSONResponse({"received": received, "stored": stored})

    return router
