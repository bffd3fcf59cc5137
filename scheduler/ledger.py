"""The scheduler's view of the send ledger (defined in :mod:`campaigns.ledger`) and the outbox.

The ledger's states and table are re-exported here because the scheduler is what moves rows
through them (claim, send, record); the outbox is the ``outbox`` transport's store.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, LargeBinary, String, Table, Text

from campaigns.ledger import (
    CAMPAIGN,
    CANCELLED,
    CLAIMED,
    FAILED,
    PENDING,
    RECONCILE_WINDOW,
    RETRY,
    SENDING,
    SENT,
    SYSTEM,
    UNKNOWN,
    sends,
)
from storage.schema import UTCDateTime, metadata

__all__ = [
    "CAMPAIGN",
    "CANCELLED",
    "CLAIMED",
    "FAILED",
    "PENDING",
    "RECONCILE_WINDOW",
    "RETRY",
    "SENDING",
    "SENT",
    "SYSTEM",
    "UNKNOWN",
    "outbox",
    "sends",
]

# The outbox transport's store: the full MIME message, nothing leaves the machine.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("send_id", String(32), nullable=False, index=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE")),
    Column("recipient", String(320), nullable=False),
    Column("subject", Text, nullable=False),
    Column("message", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
