"""Housekeeping the scheduler runs now and then."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete

from subscribers.store import UNCONFIRMED
from subscribers.tables import subscribers

UNCONFIRMED_TTL = timedelta(days=7)  # the life of a confirmation link (tokens.CONFIRM_MAX_AGE)


def expire_unconfirmed(conn: Connection, now: datetime) -> int:
    """Delete signups never confirmed within seven days; returns how many were deleted.

    Their symptoms, consent events and queued confirmation email go with them (ON DELETE
    CASCADE). No hash is kept: they never agreed, so there is nothing to remember.
    """
    result = conn.execute(
        delete(subscribers).where(
            subscribers.c.status == UNCONFIRMED,
            subscribers.c.created_at < now - UNCONFIRMED_TTL,
        )
    )
    return int(result.rowcount or 0)
