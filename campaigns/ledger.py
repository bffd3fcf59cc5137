"""The send ledger (DESIGN.md invariant 2): one row per email, written before any transport call.

It lives with the campaigns (what was planned for whom, for which step) so that engagement can
map provider events back to a (person, campaign, step) without importing the scheduler; the
scheduler owns how rows move through the states below.

States::

    pending ──claim──▶ claimed ──request leaves──▶ sending ──▶ sent
       ▲                  │                           │
       └── lease expires ─┘                           ├──▶ retry (next_attempt_at) ──▶ pending
                                                      ├──▶ failed (permanent, with reason)
                                                      └──▶ unknown (timeout after the request left)
    cancelled: consent or suppression re-check failed at claim time.

A ``claimed`` row whose lease expired never reached the transport, so it is safe to claim again.
A ``sending`` row whose lease expired may have been delivered: it becomes ``unknown``, never resent
blindly.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from storage.schema import UTCDateTime, metadata

PENDING = "pending"
CLAIMED = "claimed"
SENDING = "sending"
SENT = "sent"
RETRY = "retry"
FAILED = "failed"
UNKNOWN = "unknown"
CANCELLED = "cancelled"

# How long an ``unknown`` send waits for a provider event before it may be sent again.
RECONCILE_WINDOW = timedelta(hours=6)

# kinds of email
CAMPAIGN = "campaign"
SYSTEM = "system"  # confirmation, safety: exempt from windows and the frequency cap

sends = Table(
    "sends",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("send_id", String(32), nullable=False, unique=True),  # opaque, goes to the provider
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("campaign_id", String(64), nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("variant_id", String(64), nullable=False, default="default"),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", UTCDateTime()),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime()),
    Column("transport", String(16)),
    Column("provider_message_id", String(128)),
    Column("error", Text),
    UniqueConstraint("subscriber_id", "campaign_id", "step_id"),
)

# Claiming looks only at rows that can move; a partial index keeps that O(due).
Index(
    "ix_sends_ready",
    sends.c.next_attempt_at,
    sends.c.id,
    sqlite_where=sends.c.status.in_([PENDING, RETRY, CLAIMED, SENDING]),
    postgresql_where=sends.c.status.in_([PENDING, RETRY, CLAIMED, SENDING]),
)
Index("ix_sends_subscriber", sends.c.subscriber_id)
