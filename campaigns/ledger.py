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

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    or_,
    select,
    update,
)

from storage.schema import UTCDateTime, metadata
from subscribers.tables import subscribers

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
    # The stored content version the email was rendered from (Campaign.version_id), if any.
    Column("content_version", String(64)),
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


# Planned or sent but not yet accepted by the provider (``unknown`` may have been: it waits).
IN_FLIGHT = (PENDING, RETRY, CLAIMED, SENDING, UNKNOWN)
_CHUNK = 900  # ids per IN list: below SQLite's bound-parameter limit


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def campaign_in_flight(conn: Connection, subscriber_ids: Iterable[int]) -> dict[int, datetime]:
    """People among ``subscriber_ids`` with a campaign email not yet accepted, with the latest
    moment one of them is due (it cannot be accepted before)."""
    ids = sorted(set(subscriber_ids))
    found: dict[int, datetime] = {}
    for chunk in _chunks(ids):
        rows = conn.execute(
            select(sends.c.subscriber_id, func.max(sends.c.next_attempt_at))
            .where(
                sends.c.subscriber_id.in_(chunk),
                sends.c.kind == CAMPAIGN,
                sends.c.status.in_(IN_FLIGHT),
            )
            .group_by(sends.c.subscriber_id)
        )
        found.update({sid: due for sid, due in rows})
    return found


def count_toward_cap(conn: Connection, which: ColumnElement[bool], at: datetime) -> None:
    """The weekly cap moves when the provider accepts a campaign email: the people owning the
    campaign rows ``which`` selects had their last campaign email at ``at`` (never earlier
    than a later acceptance already recorded)."""
    owners = select(sends.c.subscriber_id).where(which, sends.c.kind == CAMPAIGN)
    conn.execute(
        update(subscribers)
        .where(
            subscribers.c.id.in_(owners),
            or_(
                subscribers.c.last_campaign_send_at.is_(None),
                subscribers.c.last_campaign_send_at < at,
            ),
        )
        .values(last_campaign_send_at=at)
    )


def mark_sent(
    conn: Connection, ids: list[int], *, at: datetime, provider_message_id: str | None
) -> None:
    """``sending`` → ``sent``: the provider accepted these emails at ``at``."""
    values: dict[str, Any] = {
        "status": SENT,
        "sent_at": at,
        "provider_message_id": provider_message_id,
        "error": None,
        "lease_until": None,
    }
    for chunk in _chunks(ids):
        conn.execute(update(sends).where(sends.c.id.in_(chunk)).values(**values))
        count_toward_cap(conn, sends.c.id.in_(chunk), at)
