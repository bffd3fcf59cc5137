"""What the engagement package holds about one person, for data export and erasure.

Stored events are found by the address's hash (provider events and our own tracking carry it)
and by the person's send ids (an event whose payload lacked the address still names its send).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection, delete, or_, select

from engagement.tables import email_events, sunset
from subscribers.addresses import address_hash


def _about(email_keys: Iterable[str], send_ids: Iterable[str]) -> Any:
    hashes = [address_hash(k) for k in email_keys]
    ids = list(send_ids)
    clauses = [email_events.c.email_hash.in_(hashes)] if hashes else []
    if ids:
        clauses.append(email_events.c.send_id.in_(ids))
    return or_(*clauses) if clauses else email_events.c.id.is_(None)


def events_of(conn: Connection, email_key: str, send_ids: list[str]) -> list[dict[str, Any]]:
    """Every stored event about the person, with the provider's raw payload (IP address, user
    agent, clicked URL … exactly as received)."""
    rows = conn.execute(
        select(email_events).where(_about([email_key], send_ids)).order_by(email_events.c.id)
    ).mappings()
    out = []
    for r in rows:
        try:
            payload = orjson.loads(r["payload"])
        except orjson.JSONDecodeError:
            payload = r["payload"]
        out.append(
            {
                "provider": r["provider"],
                "event": r["event"],
                "kind": r["kind"],
                "send_id": r["send_id"],
                "url": r["url"],
                "machine": r["machine"],
                "bounce_class": r["bounce_class"],
                "reason": r["reason"],
                "occurred_at": r["occurred_at"].isoformat() if r["occurred_at"] else None,
                "received_at": r["received_at"].isoformat(),
                "payload": payload,
            }
        )
    return out


def sunset_of(conn: Connection, subscriber_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(sunset).where(sunset.c.subscriber_id == subscriber_id)).mappings()
    found = row.first()
    if found is None:
        return None
    return {
        "state": found["state"],
        "cycles": found["cycles"],
        "asked_at": found["asked_at"].isoformat(),
        "kept_at": found["kept_at"].isoformat() if found["kept_at"] else None,
    }


def forget(conn: Connection, email_keys: Iterable[str], send_ids: Iterable[str] = ()) -> int:
    """Delete every stored event about these addresses or sends; returns rows deleted."""
    result = conn.execute(delete(email_events).where(_about(email_keys, send_ids)))
    return max(result.rowcount or 0, 0)
