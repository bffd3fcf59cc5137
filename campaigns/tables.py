"""Tables owned by the campaigns package."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from storage.schema import UTCDateTime, metadata, owner_column

ACTIVE = "active"
COMPLETED = "completed"
LEFT = "left"  # left this series (chose to, or a one-off broadcast skipped them)
# Stopped because the person stopped all email (unsubscribed, unconfirmed): a new opt-in and
# confirmation resumes it where it stopped. A series someone chose to leave is never resumed.
STOPPED = "stopped"

enrollments = Table(
    "enrollments",
    metadata,
    Column("id", Integer, primary_key=True),
    owner_column("subscriber_id", "subscribers.id"),
    Column("campaign_id", String(64), nullable=False),
    Column("step_index", Integer, nullable=False, default=0),  # index of the next step to plan
    Column("next_due_at", UTCDateTime()),
    Column("status", String(16), nullable=False),  # active | completed | left | stopped
    Column("created_at", UTCDateTime(), nullable=False),
    # For a completed or left enrollment, when it ended: nothing touches such a row until the
    # person starts a new episode (campaigns.enrollment.reenter measures the gap from it).
    Column("updated_at", UTCDateTime(), nullable=False),
    # The episode of the person's pain this enrollment is in (1, then 2 … after each re-entry)
    # and when it began (None: at ``created_at``). The ledger's key includes the episode.
    Column("episode", Integer, nullable=False, default=1, server_default="1"),
    Column("episode_started_at", UTCDateTime()),
    UniqueConstraint("subscriber_id", "campaign_id"),
)

# Due-work selection must be O(due): only active rows are indexed, by when they are due.
Index(
    "ix_enrollments_due",
    enrollments.c.next_due_at,
    enrollments.c.id,
    sqlite_where=enrollments.c.status == ACTIVE,
    postgresql_where=enrollments.c.status == ACTIVE,
)

# Events the clinic's other systems report about a person (``POST /api/v1/events``): a
# booking, an attendance, a discharge or the clinic's own types. A campaign whose ``goal`` is
# the type stops its booking steps for that person (campaigns/goals.py).
goal_events = Table(
    "goal_events",
    metadata,
    Column("id", Integer, primary_key=True),
    owner_column("subscriber_id", "subscribers.id"),
    Column("type", String(64), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("source", String(64), nullable=False),  # the API key's name
)
Index("ix_goal_events_subscriber", goal_events.c.subscriber_id, goal_events.c.type)

# Broadcast states (a one-off email to a segment; see campaigns/broadcasts.py). Progress (how
# many are waiting, sent, skipped) is read from its enrollments and ledger rows, not stored.
BROADCAST_SCHEDULED = "scheduled"
BROADCAST_CANCELLED = "cancelled"  # (a send's own ``cancelled`` is campaigns.ledger.CANCELLED)

broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", String(64), nullable=False, unique=True),  # "broadcast.<slug>"
    Column("source_name", String(255), nullable=False),  # the Markdown file it came from
    # The Markdown texts as written ({file name: text}), so the content survives restarts and
    # is parsed by the same code that validated it.
    Column("sources", Text, nullable=False),
    Column("segment", Text, nullable=False),  # the rule, as JSON
    Column("local_at", String(16), nullable=False),  # wall time in each person's zone
    Column("status", String(16), nullable=False),  # scheduled | cancelled
    Column("created_at", UTCDateTime(), nullable=False),
    Column("cancelled_at", UTCDateTime()),
    # Goes at its time whatever the weekly cap says (campaigns/cadence.py); still counts.
    Column("time_sensitive", Boolean, nullable=False, default=False, server_default=false()),
)


def review_columns() -> list[Column[object]]:
    """The columns of content that goes through review (newsletters, campaign versions): its
    ``state``, who edited and created it, and who reviewed it when, with what note. A fresh
    set per table (a Column belongs to one)."""
    return [
        Column("state", String(16), nullable=False),
        Column("editor_ids", JSON, nullable=False),  # staff ids who changed it
        Column("created_by", String(320), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("submitted_at", UTCDateTime()),
        Column("reviewed_by", String(320)),
        Column("reviewed_by_id", Integer),
        Column("reviewed_at", UTCDateTime()),
        Column("review_note", Text),
        # Bumped by every change: a save from a page that read an older revision is refused
        # (optimistic concurrency; see campaigns.review).
        Column("revision", Integer, nullable=False, default=1, server_default="1"),
    ]


@dataclass(frozen=True)
class ReviewedContent:
    """What every reviewed row says (newsletters, campaign versions): its id and
    :func:`review_columns`, the reviewer's staff id aside."""

    id: str
    state: str
    editor_ids: tuple[int, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None
    revision: int


def review_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The values of :func:`review_columns` in a row, as :class:`ReviewedContent` takes them."""
    return {
        "id": row["id"],
        "state": row["state"],
        "editor_ids": tuple(row["editor_ids"] or ()),
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "submitted_at": row["submitted_at"],
        "reviewed_by": row["reviewed_by"],
        "reviewed_at": row["reviewed_at"],
        "review_note": row["review_note"],
        "revision": int(row["revision"] or 1),
    }
