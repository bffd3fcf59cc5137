"""Changes to a person's choices, made by the person (preference centre) or by staff on their
behalf (console). One function per change, so both paths record the same consent events."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import Connection, update

from subscribers import consent, store
from subscribers.symptoms import RED_FLAGS
from subscribers.tables import subscribers

# What runs after a confirmed person's symptoms changed, in the same transaction (enrolling
# them in what the new codes select): (conn, subscriber id, now).
AfterSymptoms = Callable[[Connection, int, datetime], None]


def set_pause(conn: Connection, subscriber_id: int, until: datetime | None, now: datetime) -> None:
    """Pause campaign email until ``until`` (None resumes it)."""
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id)
        .values(paused_until=until, updated_at=now)
    )


def change_symptoms(
    conn: Connection,
    subscriber_id: int,
    chosen: Iterable[str],
    now: datetime,
    *,
    source: str,
) -> frozenset[str] | None:
    """Replace the person's symptom codes; warning signs already reported always stay on record.

    Returns the new codes, or None when nothing changed. Records the health-data consent event
    (given, or withdrawn when no code is left).
    """
    person = store.profiles(conn, [subscriber_id])[subscriber_id]
    new = frozenset((set(chosen) - RED_FLAGS) | (person.symptoms & RED_FLAGS))
    if new == person.symptoms:
        return None
    store.set_symptoms(conn, subscriber_id, new)
    store.record_consent(
        conn,
        subscriber_id,
        purpose=store.HEALTH_PURPOSE,
        action="given" if new else "withdrawn",
        at=now,
        source=source,
        wording_version=consent.VERSION if new else None,
        wording_hash=consent.wording_hash(store.HEALTH_PURPOSE) if new else None,
    )
    return new
