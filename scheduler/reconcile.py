"""Settling ``unknown`` sends (docs/architecture.md, invariant 3): a request that left without an answer.

Any provider event carrying the send's ``send_id`` proves SendGrid took it: the send becomes
``sent``. With no event after :data:`RECONCILE_WINDOW`, the request almost certainly never
arrived (SendGrid reports ``processed`` within minutes), so the send goes back to ``pending`` and is
sent again. A short delay is better than a duplicate; a duplicate is better than a lost email.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, select

from campaigns import ledger
from campaigns.ledger import RECONCILE_WINDOW
from engagement.tables import email_events

__all__ = ["RECONCILE_WINDOW", "settle_unknown"]


def settle_unknown(conn: Connection, now: datetime) -> tuple[int, int]:
    """Returns (settled as sent, released for another attempt)."""

    def has_event(send_id: ColumnElement[Any]) -> ColumnElement[bool]:
        return exists(select(email_events.c.id).where(email_events.c.send_id == send_id))

    return ledger.settle_unknown(conn, now, has_event)
