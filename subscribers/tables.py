"""Tables owned by the subscribers package."""

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from storage.schema import UTCDateTime, metadata, owner_column

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
    owner_column("subscriber_id", "subscribers.id", primary_key=True),
    Column("code", String(40), primary_key=True),
)

# Append-only: a row per consent event (given, confirmed, withdrawn) per purpose.
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True),
    owner_column("subscriber_id", "subscribers.id", index=True),
    Column("purpose", String(32), nullable=False),  # email_education | health_data
    Column("action", String(16), nullable=False),  # given | confirmed | withdrawn
    Column("at", UTCDateTime(), nullable=False),
    Column("wording_version", String(32)),
    Column("wording_hash", String(64)),
    Column("source", String(100)),
    Column("ip", String(64)),
    Column("user_agent", Text),
)

# Hashed addresses that must never be mailed again (bounces, complaints, erasures). New entries
# are HMAC-SHA256 under the installation's suppression key (storage.keys); entries written before
# that are bare SHA-256 and keep working (subscribers.store.suppressed_keys looks up both).
SCHEME_HMAC = "hmac-sha256"
SCHEME_SHA256 = "sha256"
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("scheme", String(16), nullable=False, server_default=SCHEME_SHA256),
)

Index("ix_subscribers_status", subscribers.c.status)

# What each person did with their email, as plain facts segment rules can test: the first and
# last time they opened or clicked a step (human engagement only; machine opens and link
# scanners are filtered out before anything lands here) and their check-in answers. One row per
# (person, kind, campaign, step), so the table stays small and a rule needs one indexed probe.
subscriber_activity = Table(
    "subscriber_activity",
    metadata,
    Column("id", Integer, primary_key=True),
    owner_column("subscriber_id", "subscribers.id"),
    Column("kind", String(16), nullable=False),  # open | click | checkin
    Column("campaign_id", String(64), nullable=False),  # '' when not tied to a campaign
    Column("step_id", String(64), nullable=False),  # '' when not tied to a step
    Column("value", String(16)),  # a check-in's answer: better | same | worse
    Column("count", Integer, nullable=False, default=1),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    UniqueConstraint("subscriber_id", "kind", "campaign_id", "step_id"),
)

# A signup for an address we already hold, kept apart until the owner of the address confirms
# it through the link emailed to them (subscribers.held); nothing about the person changes
# before that. Deleted when applied, when it expires, and with the person (CASCADE).
signup_requests = Table(
    "signup_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(32), nullable=False, unique=True),  # inside the confirm token
    owner_column("subscriber_id", "subscribers.id"),
    # sha256 of what was asked (name, zone, symptoms): the same request twice is held once.
    Column("fingerprint", String(64), nullable=False),
    Column("first_name", String(100)),
    Column("timezone", String(64)),
    Column("symptoms", Text, nullable=False),  # codes joined by ";"
    Column("ip", String(64)),
    Column("user_agent", String(500)),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("subscriber_id", "fingerprint"),
)
Index("ix_signup_requests_created_at", signup_requests.c.created_at)
