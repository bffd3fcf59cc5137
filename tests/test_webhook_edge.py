"""The SendGrid webhook at its edge: refused before the body is read when it is closed or the
signature headers are missing; a genuine but stale post is told a clock may be off; a batch
that could not be stored is never answered 2xx (so SendGrid sends it again), on a real server
whose database really stops answering."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, func, select

from engagement.signature import TIMESTAMP_HEADER
from engagement.tables import email_events
from engagement.webhook import sendgrid_router
from storage import Database
from tests.support.backends import BACKENDS, sqlite_only
from tests.support.http_edge import post_declaring
from tests.support.outage import serving_through_outages
from tests.support.serve import real_server
from tests.support.signer import Signer, body_of, event

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

MIB = 1024 * 1024


def _app(db: Database, key: str | None) -> FastAPI:
    app = FastAPI()
    app.include_router(sendgrid_router(db, key))
    return app


@sqlite_only("the signature's time is judged before anything is stored")
def test_a_genuine_stale_post_is_told_the_clock_may_be_off(migrated_db: Database) -> None:
    db = migrated_db
    signer = Signer()
    body = body_of([event("open", "a@example.com", 1)])
    stale = str(int(time.time()) - 3600)
    with TestClient(_app(db, signer.public_key)) as client:
        genuine = client.post(
            "/webhooks/sendgrid", content=body, headers=signer.headers(body, timestamp=stale)
        )
        assert genuine.status_code == 403
        assert "clock" in genuine.json()["detail"] and "stale" in genuine.json()["detail"]
        # Forged with the same stale timestamp: no hint, just a bad signature.
        forged = client.post(
            "/webhooks/sendgrid", content=body, headers=Signer().headers(body, timestamp=stale)
        )
        assert forged.status_code == 403
        assert forged.json()["detail"] == "invalid or missing signature"


@sqlite_only("refused before the body is read")
def test_refused_before_the_body_is_read(migrated_db: Database) -> None:
    """Headers declaring a 4 MiB body and no body at all: the refusal comes without it."""
    db = migrated_db
    signer = Signer()
    with real_server(_app(db, None)) as base:
        port = int(base.rsplit(":", 1)[1])
        assert post_declaring(port, "/webhooks/sendgrid", 4 * MIB) == 403  # closed
    with real_server(_app(db, signer.public_key)) as base:
        port = int(base.rsplit(":", 1)[1])
        assert post_declaring(port, "/webhooks/sendgrid", 4 * MIB) == 403  # no signature
        # The connection is closed after an early refusal: the unread body is never parsed as
        # a next request.
        r = httpx.post(f"{base}/webhooks/sendgrid", content=b"[]", headers={TIMESTAMP_HEADER: "1"})
        assert r.status_code == 403 and r.headers.get("connection") == "close"
    with db.begin() as conn:
        assert conn.execute(select(func.count()).select_from(email_events)).scalar_one() == 0


@pytest.mark.real_clock
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_batch_that_could_not_be_stored_is_not_acknowledged(backend: str, tmp_path: Path) -> None:
    signer = Signer()
    body = body_of([event("bounce", "gone@example.com", 1), event("open", "a@example.com", 2)])
    with (
        serving_through_outages(
            backend, tmp_path, CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY=signer.public_key
        ) as (base, db, outage, log),
        httpx.Client(base_url=base) as web,
    ):
        with outage():
            r = web.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) > 0
        # SendGrid's retry, once the database is back, stores the batch.
        again = web.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))
        assert again.status_code == 200 and again.json()["stored"] == 2
    assert "a webhook batch was not stored (503)" in log[0]
    assert "gone@example.com" not in log[0]
    engine = create_engine(db)
    try:
        with engine.begin() as conn:
            assert conn.execute(select(func.count()).select_from(email_events)).scalar_one() == 2
    finally:
        engine.dispose()
