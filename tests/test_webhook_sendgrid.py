"""POST /webhooks/sendgrid: signed with a real P-256 key exactly as SendGrid signs, stored once,
applied from the stored rows."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from campaigns.tables import enrollments
from engagement.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from engagement.tables import email_events
from engagement.webhook import sendgrid_router
from storage import Database
from subscribers import store
from subscribers.tables import subscribers
from tests.support.backends import sqlite_only
from tests.support.cli import CLI, write_csv
from tests.support.signer import Signer, body_of, event

with warnings.catch_warnings():
    # Starlette asks for its `httpx2` fork; the `httpx` we have works the same for tests.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class Hook:
    def __init__(self, db: Database, client: TestClient, signer: Signer) -> None:
        self.db = db
        self.client = client
        self.signer = signer

    def post(self, events: list[dict[str, Any]]) -> Any:
        body = body_of(events)
        return self.signer.post(self.client, body)

    def count(self) -> int:
        with self.db.begin() as conn:
            return int(conn.execute(select(func.count()).select_from(email_events)).scalar_one())


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def hook(migrated_db: Database, signer: Signer) -> Iterator[Hook]:
    db = migrated_db
    app = FastAPI()
    app.include_router(sendgrid_router(db, signer.public_key))
    with TestClient(app) as client:
        yield Hook(db, client, signer)


def test_signed_batch_is_stored_once(hook: Hook) -> None:
    batch = [event("delivered", "a@example.com", 1), event("open", "a@example.com", 2)]
    r = hook.post(batch)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 2, "stored": 2, "rejected": 0}
    for _ in range(5):
        again = hook.post(batch)
        assert again.status_code == 200
        assert again.json()["stored"] == 0
    assert hook.count() == 2
    with hook.db.begin() as conn:
        rows = conn.execute(select(email_events).order_by(email_events.c.id)).mappings().all()
    assert [r["kind"] for r in rows] == ["delivered", "opened"]
    assert all(r["applied_at"] is not None for r in rows)  # applied by the background task
    assert json.loads(rows[0]["payload"]) == batch[0]  # raw payload kept


def test_events_with_different_ids_are_never_merged(hook: Hook) -> None:
    # Two opens of one email in the same second look alike; SendGrid's ids tell them apart.
    first = event("open", "a@example.com", 1)
    second = {**first, "sg_event_id": "another-id"}
    assert hook.post([first]).json()["stored"] == 1
    assert hook.post([second, second]).json()["stored"] == 1
    assert hook.post([first, second]).json()["stored"] == 0
    assert hook.count() == 2


def test_events_without_an_id_are_deduplicated_by_what_they_say(hook: Hook) -> None:
    bare = {k: v for k, v in event("open", "a@example.com", 1).items() if k != "sg_event_id"}
    assert hook.post([bare, bare]).json()["stored"] == 1
    assert hook.post([bare]).json()["stored"] == 0
    assert hook.count() == 1


@pytest.mark.parametrize("skew", [-3600, -301, 301, 86400])
@sqlite_only("the signature and its time are judged before anything is stored")
def test_signed_posts_far_from_now_are_refused(hook: Hook, signer: Signer, skew: int) -> None:
    body = body_of([event("spamreport", "a@example.com", 1)])
    stale = signer.headers(body, timestamp=str(int(time.time()) + skew))
    _refused(hook, body, stale)


@pytest.mark.parametrize("skew", [-240, 0, 240])
@sqlite_only("the time window is judged before the batch is stored (stored: on both, above)")
def test_signed_posts_within_minutes_are_accepted(hook: Hook, signer: Signer, skew: int) -> None:
    body = body_of([event("open", "a@example.com", 1)])
    r = hook.client.post(
        "/webhooks/sendgrid",
        content=body,
        headers=signer.headers(body, timestamp=str(int(time.time()) + skew)),
    )
    assert r.status_code == 200 and r.json()["stored"] == 1


@pytest.mark.parametrize("field", ["send_id", "url", "reason", "sg_event_id", "email"])
def test_a_nul_in_one_event_keeps_the_rest_of_the_batch(
    people: CLI, hook: Hook, field: str
) -> None:
    bad = event("click", "opener@example.com", 2, url="https://clinic.example/", send_id="s-1")
    bad[field] = f"{bad.get(field, 'x')}\u0000tail"
    batch = [event("unsubscribe", "unsub@example.com", 1), bad, event("open", "spam@x.org", 3)]
    r = hook.post(batch)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3, "stored": 3, "rejected": 1}
    assert _status(hook.db, "unsub@example.com") == "unsubscribed"  # the good event applied
    with hook.db.begin() as conn:
        rows = conn.execute(
            select(email_events.c.kind, email_events.c.reason, email_events.c.send_id).order_by(
                email_events.c.id
            )
        ).all()
    assert [r.kind for r in rows] == ["unsubscribed", "rejected", "opened"]
    assert rows[1].reason == f"rejected: a NUL character in {field}"
    assert rows[1].send_id is None
    assert hook.post(batch).json()["stored"] == 0  # a retry changes nothing


def _refused(hook: Hook, body: bytes, headers: dict[str, str]) -> None:
    r = hook.client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert r.status_code == 403, r.text
    assert hook.count() == 0


@sqlite_only("the signature and its time are judged before anything is stored")
def test_forged_or_missing_signatures_are_refused(hook: Hook, signer: Signer) -> None:
    batch = [event("bounce", "a@example.com", 1)]
    body = body_of(batch)
    good = signer.headers(body)

    _refused(hook, body.replace(b"a@example", b"b@example"), good)  # tampered body
    _refused(hook, body, Signer().headers(body))  # signed with another key
    _refused(hook, body, {TIMESTAMP_HEADER: good[TIMESTAMP_HEADER]})  # no signature
    _refused(hook, body, {SIGNATURE_HEADER: good[SIGNATURE_HEADER]})  # no timestamp
    _refused(hook, body, {})
    _refused(hook, body, {**good, SIGNATURE_HEADER: "!!!not base64!!!"})
    _refused(hook, body, {**good, SIGNATURE_HEADER: "aGVsbG8="})  # base64, not a signature
    _refused(hook, body, {**good, TIMESTAMP_HEADER: "1763900001"})  # another timestamp
    # the same data re-serialised (other whitespace) is not what was signed
    _refused(hook, json.dumps(batch, indent=2).encode("utf-8"), good)
    _refused(hook, b"\xff\xfe" + body, signer.headers(b"\xff\xfe" + body))  # not UTF-8
    assert hook.post(batch).status_code == 200  # and the genuine one still passes


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"event": "open"}', b"[1, 2]", b'[{"event": "open"}, "x"]'],
)
@sqlite_only("a body is parsed before anything is stored")
def test_bad_bodies_are_400(hook: Hook, signer: Signer, body: bytes) -> None:
    r = signer.post(hook.client, body)
    assert r.status_code == 400
    assert hook.count() == 0


@pytest.mark.parametrize("key", [None, "", "  "])
@sqlite_only("the webhook is closed by a setting, before any query")
def test_without_a_key_the_webhook_is_closed(migrated_db: Database, key: str | None) -> None:
    db = migrated_db
    app = FastAPI()
    app.include_router(sendgrid_router(db, key))
    body = body_of([event("spamreport", f"p{n}@x.org", n) for n in range(4)])
    with TestClient(app) as client:
        for headers in ({}, Signer().headers(body), {"Content-Type": "application/json"}):
            r = client.post("/webhooks/sendgrid", content=body, headers=headers)
            assert r.status_code == 403, r.text
    with db.begin() as conn:
        assert conn.execute(select(func.count()).select_from(email_events)).scalar_one() == 0


@sqlite_only("a configured key is judged before anything is stored")
def test_an_unusable_configured_key_refuses_everything(migrated_db: Database) -> None:
    db = migrated_db
    app = FastAPI()
    app.include_router(sendgrid_router(db, "not-a-key"))
    body = body_of([event("open", "a@x.org", 1)])
    with TestClient(app) as client:
        r = client.post("/webhooks/sendgrid", content=body, headers=Signer().headers(body))
        assert r.status_code == 403


@sqlite_only("a key's format is judged before anything is stored")
def test_a_pem_key_is_accepted_too(migrated_db: Database, signer: Signer) -> None:
    db = migrated_db
    pem = f"-----BEGIN PUBLIC KEY-----\n{signer.public_key}\n-----END PUBLIC KEY-----\n"
    app = FastAPI()
    app.include_router(sendgrid_router(db, pem))
    body = body_of([event("open", "a@x.org", 1)])
    with TestClient(app) as client:
        assert signer.post(client, body).status_code == 200


# -- applying stored events to people -------------------------------------------------------------


@pytest.fixture
def people(cli: CLI, tmp_path: Path) -> CLI:
    csv = write_csv(
        tmp_path / "people.csv",
        [
            f"{name}@example.com,{name.title()},lower_back,Europe/London,yes,,"
            for name in ("hard", "soft", "drop", "spam", "unsub", "group", "opener")
        ],
    )
    run = cli("subscribers", "import", str(csv))
    assert run.code == 0, run.err
    return cli


def _status(db: Database, email: str) -> str:
    with db.begin() as conn:
        return str(
            conn.execute(
                select(subscribers.c.status).where(subscribers.c.email_key == email)
            ).scalar_one()
        )


def _suppressed(db: Database, email: str) -> bool:
    with db.begin() as conn:
        return store.is_suppressed(conn, email)


def _active_enrollments(db: Database, email: str) -> int:
    with db.begin() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(enrollments.join(subscribers))
                .where(subscribers.c.email_key == email, enrollments.c.status == "active")
            ).scalar_one()
        )


def test_events_suppress_and_unsubscribe(people: CLI, hook: Hook) -> None:
    db = hook.db
    assert _active_enrollments(db, "unsub@example.com") == 1
    batch = [
        event("bounce", "HARD@example.com", 1, type="bounce", reason="550 no such user"),
        event("bounce", "soft@example.com", 2, type="blocked", reason="421 try later"),
        event("bounce", "soft@example.com", 3, type="blocked"),
        event("dropped", "drop@example.com", 4, reason="Bounced Address"),
        event("spamreport", "spam@example.com", 5),
        event("unsubscribe", "unsub@example.com", 6),
        event("group_unsubscribe", "group@example.com", 7, asm_group_id=1),
        event("open", "opener@example.com", 8, sg_machine_open=True),
        event("bounce", "nobody-we-know@example.com", 9),
    ]
    assert hook.post(batch).json()["stored"] == len(batch)

    assert _suppressed(db, "hard@example.com")
    assert not _suppressed(db, "soft@example.com")  # two soft bounces are not enough
    assert _suppressed(db, "drop@example.com")
    assert _suppressed(db, "spam@example.com") and _status(db, "spam@example.com") == "unsubscribed"
    assert _status(db, "unsub@example.com") == "unsubscribed"
    assert _active_enrollments(db, "unsub@example.com") == 0
    assert _status(db, "group@example.com") == "unsubscribed"
    assert _status(db, "opener@example.com") == "confirmed" and not _suppressed(
        db, "opener@example.com"
    )
    assert _suppressed(db, "nobody-we-know@example.com")  # unknown people are suppressed too

    hook.post([event("bounce", "soft@example.com", 10, type="blocked")])
    assert _suppressed(db, "soft@example.com")  # the third soft bounce in a row


def test_a_delivery_resets_the_soft_bounce_count(people: CLI, hook: Hook) -> None:
    hook.post([event("bounce", "soft@example.com", n, type="blocked") for n in (1, 2)])
    hook.post([event("delivered", "soft@example.com", 3)])
    hook.post([event("bounce", "soft@example.com", n, type="blocked") for n in (4, 5)])
    assert not _suppressed(hook.db, "soft@example.com")
    hook.post([event("bounce", "soft@example.com", 6, type="blocked")])
    assert _suppressed(hook.db, "soft@example.com")


def test_forget_erases_every_event_about_an_address(hook: Hook) -> None:
    from engagement.personal import forget

    hook.post([event("open", "Gone@example.com", 1), event("open", "kept@example.com", 2)])
    with hook.db.begin() as conn:
        assert forget(conn, ["gone@example.com"]) == 1
    assert hook.count() == 1
