"""Tables owned by the API package."""

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from storage.schema import UTCDateTime, metadata, owner_column

# A key for another system. Only the SHA-256 of the key is stored (the key is 256 random bits,
# so a plain hash is enough, and a copy of the database hands out no working key); ``prefix``
# is the key's first characters, not secret, to tell keys apart in lists and logs. A revoked
# key's row stays, for the audit trail; its name may be used again.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
)
Index("ix_api_keys_name", api_keys.c.name)

# Every authenticated use of a key: when, which route (its template: ids are opaque anyway),
# and the answer. Never a body, a query string or anything personal.
api_requests = Table(
    "api_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    owner_column("key_id", "api_keys.id"),
    Column("at", UTCDateTime(), nullable=False),
    Column("method", String(8), nullable=False),
    Column("route", String(200), nullable=False),
    Column("status", Integer, nullable=False),
)
Index("ix_api_requests_key_at", api_requests.c.key_id, api_requests.c.at)

# Idempotency-Key: the first answer to a POST with a given key (per API key), replayed to a
# retry with the same body for a day; a different body under the same key is refused.
api_idempotency = Table(
    "api_idempotency",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("key_id", "idempotency_key"),
)
Index("ix_api_idempotency_created", api_idempotency.c.created_at)
