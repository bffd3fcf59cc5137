"""Tables owned by the outgoing-webhooks package."""

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from storage.schema import UTCDateTime, metadata, owner_column

# A receiver staff registered: where to post, which events, the signing secret (``whsec_…``,
# shown once when added). ``failing_since``: the first failed attempt since the last success;
# an endpoint failing for longer than the disable period is switched off with a staff alert.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),  # list of event types
    Column("secret", String(128), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("failing_since", UTCDateTime()),
    Column("disabled_at", UTCDateTime()),
    Column("disabled_reason", Text),
)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"  # gave up: the endpoint was disabled or removed, or attempts ran out

# One event for one endpoint. ``event_id`` is the ``webhook-id`` header (the same on every
# attempt, so a receiver can deduplicate); ``body`` is exactly the signed JSON.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    owner_column("endpoint_id", "webhook_endpoints.id"),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime()),
    Column("last_attempt_at", UTCDateTime()),
    Column("last_status_code", Integer),
    Column("last_error", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    UniqueConstraint("endpoint_id", "event_id"),
)
# What is due: only pending rows, by when (the tick reads O(due)).
Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.next_attempt_at,
    webhook_deliveries.c.id,
    sqlite_where=webhook_deliveries.c.status == PENDING,
    postgresql_where=webhook_deliveries.c.status == PENDING,
)
