"""Tables owned by the transports: the ``outbox`` transport's store.

(The send ledger's table and states are :mod:`campaigns.ledger`'s.)
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, LargeBinary, String, Table, Text

from storage.schema import UTCDateTime, metadata, owner_column

# The outbox transport's store: the full MIME message, nothing leaves the machine.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("send_id", String(32), nullable=False, index=True),
    owner_column("subscriber_id", "subscribers.id", nullable=True),
    Column("recipient", String(320), nullable=False),
    Column("subject", Text, nullable=False),
    Column("message", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
