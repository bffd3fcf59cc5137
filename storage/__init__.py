"""Shared storage: one SQLAlchemy metadata, the engine factory, the migration runner.

Every domain package declares its own tables against :data:`metadata`; the Alembic migrations
in ``storage/migrations`` are the single source of truth for the schema on disk (a test compares
them with the metadata so the two cannot drift).
"""

from storage.db import Database, unreachable, utcnow
from storage.schema import UTCDateTime, metadata

__all__ = ["Database", "UTCDateTime", "metadata", "unreachable", "utcnow"]
