"""Settling ``unknown`` sends (DESIGN.md invariant 3): a request that left without an answer.

Any provider event carrying the send's ``send_id`` proves SendGrid took it: the send becomes
``sent``. With no event after :data:`RECONCILE_WINDOW`, the request almost certainly never
arrived (SendGrid reports ``processed`` within minutes), so the send goes back to ``pending`` and is
sent again. A short delay is better than a duplicate; a duplicate is better than a lost email.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, exists, select, update

from campaigns.ledger import count_toward_cap
from engagement.tables import email_events
from scheduler.ledger import PENDING, RECONCILE_WINDOW, SENT, UNKNOWN, sends

__all__ = ["RECONCILE_WINDOW", "settle_unknown"]


def settle_unknown(conn: Connection, now: datetime) -> tuple[int, int]:
    """Returns (settled as sent, released for another attempt)."""
    has_event = exists(select(email_events.c.id).where(email_events.c.send_id == sends.c.send_id))
    # Accepted at some moment before now: counting it from now only ever waits longer.
    count_toward_cap(conn, and_(sends.c.status == UNKNOWN, has_event), now)
    settled = conn.execute(
        update(sends)
        .where(sends.c.status == UNKNOWN, has_event)
        .values(status=SENT, sent_at=now, error=None)
    ).rowcount
    # An unknown send's next_attempt_at is set to (when the request left + the window).
    released = conn.execute(
        update(sends)
        .where(
            sends.c.status == UNKNOWN,
            ~has_event,
            sends.c.next_attempt_at <= now,
        )
        .values(
            status=PENDING,
            next_attempt_at=now,
            error="re-sent: no provider event within the reconciliation window",
        )
    ).rowcount
    return int(settled or 0), int(released or 0)
