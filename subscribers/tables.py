"""Tables owned by the subscribers package."""

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from storage.schema import UTCDateTime, metadata

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    # Random, opaque id used inside signed tokens; never the row id or the address.
    Column("public_id", String(32), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),  # lower-cased for comparison
    Column("first_name", String(100)),
    Column("timezone", String(64)),
    # unconfirmed | confirmed | unsubscribed
    Column("status", String(16), nullable=False),
    Column("source", String(100)),
    Column("red_flag", Boolean, nullable=False, default=False),
    Column("paused_until", UTCDateTime()),
    Column("last_campaign_send_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("confirmed_at", UTCDateTime()),
    Column("unsubscribed_at", UTCDateTime()),
)

subscriber_symptoms = Table(
    "subscriber_symptoms",
    metadata,
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("code", String(40), primary_key=True),
)

# Append-only: a row per consent event (given, confirmed, withdrawn) per purpose.
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("purpose", String(32), nullable=False),  # email_education | health_data
    Column("action", String(16), nullable=False),  # given | confirmed | withdrawn
    Column("at", UTCDateTime(), nullable=False),
    Column("wording_version", String(32)),
    Column("wording_hash", String(64)),
    Column("source", String(100)),
    Column("ip", String(64)),
    Column("user_agent", Text),
)

# Hashed addresses that must never be mailed again (bounces, complaints, erasures).
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

Index("ix_subscribers_status", subscribers.c.status)
