"""Tables owned by the campaigns package."""

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from storage.schema import UTCDateTime, metadata

ACTIVE = "active"
COMPLETED = "completed"
LEFT = "left"

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
    Column("status", String(16), nullable=False),  # active | completed | left
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
