"""Tables owned by the ops-alert queue."""

from sqlalchemy import JSON, Column, Integer, String, Table, UniqueConstraint

from storage.schema import UTCDateTime, metadata

# One alert to staff. ``kind`` is an ops email's name (templates.system.OPS_EMAILS); ``key``
# names the occurrence (an incident, a day's level, a switched-off endpoint), so raising the
# same one twice queues it once. ``alert_id`` is the message's send id for the transport.
# Pending while ``delivered_at`` is empty; ``outcome`` says how it ended.
ops_alerts = Table(
    "ops_alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_id", String(32), nullable=False, unique=True),
    Column("kind", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("variables", JSON, nullable=False),
    Column("raised_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("delivered_at", UTCDateTime()),
    Column("outcome", String(16)),  # sent | refused | unaddressed
    UniqueConstraint("kind", "key"),
)
