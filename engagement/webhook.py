"""``POST /webhooks/sendgrid``: verify, store, acknowledge, then process (docs/architecture.md, invariant 6).

* Without ``CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY`` the webhook is closed: every post is 403 and
  nothing is stored (an open webhook lets anyone suppress or unsubscribe the whole list). A
  closed webhook, and a post without both signature headers, is refused before its body is read.
* With the key set, the ECDSA signature in ``X-Twilio-Email-Event-Webhook-Signature`` must verify
  over ``timestamp + raw body`` (checked by the ``sendgrid`` package's ``EventWebhook``), and the
  signed timestamp must be within :data:`MAX_SKEW_SECONDS` of our clock; anything missing,
  malformed, forged or stale is 403 and nothing is stored (a genuine but stale post is told that
  a clock may be off). The raw bytes are verified, never a re-serialisation of the parsed JSON.
* A batch that could not be stored (the database unreachable) is 503 with ``Retry-After``, any
  other failure a 500: never a 2xx, so SendGrid sends it again (it retries for 24 hours).
* A body that is not a JSON array of objects is 400.
* An event no database can hold (a NUL character anywhere) is recorded as ``rejected`` with its
  reason, and the rest of its batch is stored as usual: one bad event never loses a batch.
* Accepted events are stored (deduplicated) and the answer is 200 at once; they are applied by a
  background task right after the response, and in any case by the next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from engagement.events import Kind
from engagement.ingest import BadBatch, parse_sendgrid, store
from engagement.process import applier
from engagement.signature import (
    BAD_SIGNATURE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureVerifier,
)
from storage import Database, unreachable, utcnow

log = logging.getLogger("clinicmail.webhooks")

# A refusal sent before the body was read closes the connection: the unread body must not be
# taken for the next request.
CLOSE = {"Connection": "close"}


def sendgrid_router(
    db: Database,
    public_key: str | None,
    *,
    apply: Callable[[], object] | None = None,
) -> APIRouter:
    """The webhook route. ``apply`` runs after each accepted batch (default: apply pending events).

    Without ``public_key`` every post is refused (403) and nothing is stored."""
    verifier = SignatureVerifier(public_key) if public_key and public_key.strip() else None
    router = APIRouter(tags=["webhooks"])

    # SQLite has one writer. Threads that all knock on BEGIN IMMEDIATE sleep in the busy
    # handler's growing back-off while the lock sits free; taking turns on a process lock first
    # keeps the single writer busy (other processes still wait in the busy handler as before).
    turn: AbstractContextManager[object] = threading.Lock() if db.is_sqlite else nullcontext()

    @contextmanager
    def writing() -> Iterator[Connection]:
        with turn, db.begin() as conn:
            yield conn

    apply_now = applier(writing, utcnow, apply)

    def ingest(body: bytes) -> tuple[int, int, int]:
        events = parse_sendgrid(body)
        with writing() as conn:
            stored = store(conn, events, utcnow())
        return len(events), stored, sum(1 for e in events if e.kind is Kind.REJECTED)

    @router.post(
        "/webhooks/sendgrid",
        summary="SendGrid Event Webhook batches",
        responses={
            403: {"description": "Closed (no public key), unsigned, forged or stale."},
            503: {"description": "The batch could not be stored; SendGrid sends it again."},
        },
    )
    async def receive(request: Request, background: BackgroundTasks) -> JSONResponse:
        # Refused before the body is read: a closed webhook or a post without the signature
        # headers costs no memory, whatever its size.
        if verifier is None:
            return JSONResponse(
                {"detail": "the webhook is closed until its public key is configured"},
                status_code=403,
                headers=CLOSE,
            )
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            return JSONResponse({"detail": BAD_SIGNATURE}, status_code=403, headers=CLOSE)
        body = await request.body()  # bounded while it streams in by the app's body limit
        refused = verifier.check(body, signature, timestamp)
        if refused is not None:
            return JSONResponse({"detail": refused}, status_code=403)
        try:
            received, stored, rejected = await run_in_threadpool(ingest, body)
        except BadBatch as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        except Exception as exc:
            if not unreachable(exc):
                raise  # a fault: a 500, which SendGrid retries too
            log.warning("a webhook batch was not stored (503): %s", type(exc).__name__)
            return JSONResponse(
                {"detail": "the batch could not be stored; send it again later"},
                status_code=503,
                headers={"Retry-After": "60"},
            )
        if stored:
            background.add_task(apply_now)
        # 200 even with rejected events: they are recorded with their reason, and a retry of the
        # batch would be refused the same way, so SendGrid must not retry it.
        return JSONResponse({"received": received, "stored": stored, "rejected": rejected})

    return router
