"""Tables owned by the engagement package."""

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
)

from storage.schema import UTCDateTime, metadata, owner_column

# One row per provider event, stored raw before anything is applied (docs/architecture.md, invariant 6).
email_events = Table(
    "email_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("provider", String(16), nullable=False),
    # SendGrid's own id for the event; NULL when a payload lacks it (the natural key still dedupes).
    Column("sg_event_id", String(128), unique=True),
    # sha256 of the sg_event_id when there is one (events with different ids are never merged),
    # else over (sg_message_id, event, timestamp, url, address, send_id).
    Column("natural_key", String(64), nullable=False, unique=True),
    Column("sg_message_id", String(255)),
    Column("event", String(32), nullable=False),  # the provider's name, as sent
    Column("kind", String(16), nullable=False),  # our normalized kind (engagement.events.Kind)
    Column("send_id", String(64)),  # from custom_args: our ledger's opaque send id
    Column("email_hash", String(64)),  # address_hash of the recipient, for erasure and counting
    Column("url", Text),
    Column("machine", Boolean, nullable=False, default=False),  # e.g. Apple MPP prefetch opens
    Column("bounce_class", String(8)),  # hard | soft for bounces
    Column("reason", Text),
    Column("occurred_at", UTCDateTime()),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("applied_at", UTCDateTime()),
    Column("payload", Text, nullable=False),  # the raw event JSON, exactly one array element
)

Index("ix_email_events_send_id", email_events.c.send_id)
Index("ix_email_events_email_hash", email_events.c.email_hash)
# The processing queue: only unapplied rows are indexed.
Index(
    "ix_email_events_pending",
    email_events.c.id,
    sqlite_where=email_events.c.applied_at.is_(None),
    postgresql_where=email_events.c.applied_at.is_(None),
)

# The complaint rate is counted per UTC day (engagement.complaints): spam reports by when they
# happened, deliveries likewise (sends by when they left: the ledger's ix_sends_sent_at). This
# index keeps that O(day).
Index("ix_email_events_kind_occurred_at", email_events.c.kind, email_events.c.occurred_at)

# Sunset policy (engagement.sunset): one row per person the policy has ever acted on.
# ``paused`` people get no campaign email until they click "keep me" (or any link, or answer a
# check-in); ``kept`` people are active again and their dormancy clock restarts at ``kept_at``.
sunset = Table(
    "sunset",
    metadata,
    owner_column("subscriber_id", "subscribers.id", primary_key=True),
    Column("state", String(16), nullable=False),  # paused | kept
    Column("cycles", Integer, nullable=False, default=1),  # re-engagement emails so far
    Column("asked_at", UTCDateTime(), nullable=False),  # the latest re-engagement email
    Column("kept_at", UTCDateTime()),
)
Index("ix_sunset_state", sunset.c.state)

# Each distinct outbound URL of a rendered (campaign, step, variant), stored once. A recipient's
# link names a row by id, so a redirect can only ever go to a URL that was in an email we
# rendered. When the content changes, a new URL gets a new row and links in emails already sent
# keep their old target.
tracked_links = Table(
    "tracked_links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", String(64), nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("variant_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),  # order of first appearance in the email
    Column("url_hash", String(64), nullable=False),  # sha256 of the URL: a key of bounded size
    Column("url", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint(
        "campaign_id",
        "step_id",
        "variant_id",
        "position",
        "url_hash",
        name="uq_tracked_links_content",
    ),
)

# Personal follow-up of a person who reported something worrying (engagement.followups): a
# red-flag signup, or a check-in answered "worse". One row per (person, what it answers), so a
# repeated report opens nothing new. ``reported`` is what they told us, for signed-in clinicians
# and ops only; it never leaves the database. Closed once staff record an outcome and a note.
followups = Table(
    "followups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(32), nullable=False, unique=True),  # in console URLs: opaque
    owner_column("subscriber_id", "subscribers.id"),
    Column("reason", String(16), nullable=False),  # red_flag | checkin
    Column("source_key", String(80), nullable=False),  # "red-flag", or the answered send_id
    Column("reported", JSON, nullable=False),  # {"codes": [...]} or {"answer", "campaign_id", …}
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),  # unacknowledged past it: staff reminded
    Column("reminded_at", UTCDateTime()),
    Column("outcome", String(16)),  # contacted | no_action
    Column("note", Text),
    Column("closed_at", UTCDateTime()),
    Column("closed_by", String(320)),  # the staff member's address (the audit log has the id)
    UniqueConstraint("subscriber_id", "source_key", name="uq_followups_subscriber_source"),
)
# The open ones, by when they fall due: the console's list, its count and the reminder pass.
Index(
    "ix_followups_open_due",
    followups.c.due_at,
    sqlite_where=followups.c.closed_at.is_(None),
    postgresql_where=followups.c.closed_at.is_(None),
)
Index("ix_followups_subscriber", followups.c.subscriber_id)
