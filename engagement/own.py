"""Events that happen on our own pages rather than at the provider, stored beside the provider's
so ``clinicmail stats`` counts both the same way.

An unsubscribe through an email's own one-click or footer link becomes an ``unsubscribed``
event for that email's ``send_id``, already applied (the subscriber was unsubscribed in the same
transaction). ``stats`` counts distinct sends, so a provider event for the same email does not
count it twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import orjson
from sqlalchemy import Connection

from campaigns.ledger_reads import email_key_of
from engagement.events import Kind
from engagement.tables import email_events
from storage.sql import dialect_insert
from subscribers.addresses import address_hash

PROVIDER = "clinicmail"


def record_unsubscribe(conn: Connection, send_id: str, now: datetime) -> bool:
    """Store the unsubscribe made through a link in the email ``send_id``; False when that email
    is unknown (erased, or a forged id inside a genuine signature cannot happen) or was already
    counted."""
    email_key = email_key_of(conn, send_id)
    if email_key is None:
        return False
    natural = hashlib.sha256(f"{PROVIDER}\x1funsubscribe\x1f{send_id}".encode()).hexdigest()
    result = conn.execute(
        dialect_insert(conn, email_events)
        .values(
            provider=PROVIDER,
            sg_event_id=None,
            natural_key=natural,
            event="unsubscribe",
            kind=Kind.UNSUBSCRIBED.value,
            send_id=send_id,
            email_hash=address_hash(email_key),  # so erasure finds and deletes it
            machine=False,
            occurred_at=now,
            received_at=now,
            applied_at=now,
            payload=orjson.dumps({"event": "unsubscribe", "source": "link"}).decode(),
        )
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount)
