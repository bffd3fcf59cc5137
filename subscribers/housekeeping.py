"""Housekeeping the scheduler runs now and then."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from subscribers.store import UNCONFIRMED, UNSUBSCRIBED
from subscribers.tables import subscribers

UNCONFIRMED_TTL = timedelta(days=7)  # the life of a confirmation link (tokens.CONFIRM_MAX_AGE)


def expire_unconfirmed(
    conn: Connection,
    now: datetime,
    *,
    on_expire: Callable[[Connection, list[int], list[str]], object] | None = None,
    ttl: timedelta = UNCONFIRMED_TTL,
) -> int:
    """Delete signups never confirmed within ``ttl`` (seven days unless
    ``CLINICMAIL_RETAIN_UNCONFIRMED_DAYS`` says otherwise); returns how many were deleted.

    Their symptoms, consent events and queued confirmation email go with them (ON DELETE
    CASCADE). No hash is kept: they never agreed, so there is nothing to remember.
    ``on_expire(conn, subscriber_ids, email_keys)`` runs first, so other packages can drop what they
    hold about those people (stored webhook events of the confirmation email).

    Someone who had unsubscribed and signed up again without confirming is not deleted (their
    consent history is evidence worth keeping): seven days after that signup they simply go
    back to unsubscribed after the same time.
    """
    stale = now - ttl
    expiring = (
        subscribers.c.status == UNCONFIRMED,
        subscribers.c.unsubscribed_at.is_(None),
        subscribers.c.created_at < stale,
    )
    if on_expire is not None:
        people = conn.execute(select(subscribers.c.id, subscribers.c.email_key).where(*expiring))
        ids, keys = [], []
        for row in people:
            ids.append(row.id)
            keys.append(row.email_key)
        if keys:
            on_expire(conn, ids, keys)
    result = conn.execute(delete(subscribers).where(*expiring))
    conn.execute(
        update(subscribers)
        .where(
            subscribers.c.status == UNCONFIRMED,
            subscribers.c.unsubscribed_at.is_not(None),
            subscribers.c.updated_at < stale,
        )
        .values(status=UNSUBSCRIBED, updated_at=now)
    )
    return int(result.rowcount or 0)
