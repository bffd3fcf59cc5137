"""Tables owned by the staff package."""

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table, Text

from storage.schema import UTCDateTime, metadata, owner_column

staff_users = Table(
    "staff_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),  # lower-cased for comparison
    Column("role", String(16), nullable=False),  # marketing | clinician | ops
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("password_changed_at", UTCDateTime(), nullable=False),
)

# Server-side sessions. The cookie holds a random token; only its SHA-256 is stored, so a copy
# of the database does not hand out live sessions.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    owner_column("user_id", "staff_users.id", index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
)

# Every sign-in attempt, by the address typed (known account or not), for the lockout rule.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email_key", String(320), nullable=False),
    Column("outcome", String(16), nullable=False),  # success | failure | locked | lock
    Column("at", UTCDateTime(), nullable=False),
)
Index("ix_login_attempts_email_key_at", login_attempts.c.email_key, login_attempts.c.at)

# Append-only (triggers refuse UPDATE and DELETE): who did what, when, to which record.
# ``actor`` is the staff member's address or "cli"; ``target`` names a record by opaque ids only.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor_id", Integer),  # staff_users.id; kept when the account is later disabled
    Column("actor", String(320), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(128), nullable=False),
    Column("detail", JSON),  # before/after for content changes
)
Index("ix_audit_log_target", audit_log.c.target_type, audit_log.c.target_id)
Index("ix_audit_log_at", audit_log.c.at)
