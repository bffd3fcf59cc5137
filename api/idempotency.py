"""``Idempotency-Key`` on the API's POSTs: the first answer under a key is stored and replayed
to a retry (with ``Idempotent-Replayed: true``) for :data:`KEEP`; the same key with a different
request is refused (422). Keys are per API key, so two systems cannot collide."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select

from api.tables import api_idempotency
from storage.sql import dialect_insert

KEEP = timedelta(hours=24)


def request_hash(method: str, path: str, body: str) -> str:
    return hashlib.sha256(f"{method}\x00{path}\x00{body}".encode()).hexdigest()


def stored(
    conn: Connection, key_id: int, idempotency_key: str, now: datetime
) -> tuple[str, int, str] | None:
    """(request hash, status, body) of the answer stored under the key, if still kept."""
    row = conn.execute(
        select(
            api_idempotency.c.request_hash,
            api_idempotency.c.status_code,
            api_idempotency.c.body,
        ).where(
            api_idempotency.c.key_id == key_id,
            api_idempotency.c.idempotency_key == idempotency_key,
            api_idempotency.c.created_at > now - KEEP,
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def store(
    conn: Connection,
    key_id: int,
    idempotency_key: str,
    hashed: str,
    status: int,
    body: str,
    now: datetime,
) -> None:
    conn.execute(delete(api_idempotency).where(api_idempotency.c.created_at <= now - KEEP))
    conn.execute(
        dialect_insert(conn, api_idempotency)
        .values(
            key_id=key_id,
            idempotency_key=idempotency_key,
            request_hash=hashed,
            status_code=status,
            body=body,
            created_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=[api_idempotency.c.key_id, api_idempotency.c.idempotency_key]
        )
    )
