"""Tables owned by the campaigns package."""

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from storage.schema import UTCDateTime, metadata

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
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("campaign_id", String(64), nullable=False),
    Column("step_index", Integer, nullable=False, default=0),  # index of the next step to plan
    Column("next_due_at", UTCDateTime()),
    Column("status", String(16), nullable=False),  # active | completed | left | stopped
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
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

# Broadcast states (a one-off email to a segment; see campaigns/broadcasts.py). Progress (how
# many are waiting, sent, skipped) is read from its enrollments and ledger rows, not stored.
SCHEDULED = "scheduled"
CANCELLED = "cancelled"

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
