"""Bringing an installation's schema up to this version: a backup first, then the migrations.

``clinicmail upgrade`` and ``clinicmail init`` (on a database made by an older version) both go
through :func:`upgrade`; every other command only opens a database whose schema is this
version's (``storage.Database.open``), so nothing migrates silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage import Database
from storage.backup import BackupError, backup
from storage.db import SchemaError, SchemaState


@dataclass(frozen=True)
class Upgrade:
    before: SchemaState
    after: SchemaState
    backup: Path | None

    def describe(self) -> str:
        if self.before.status == "current":
            return f"the database schema is up to date ({self.after.describe()})"
        if self.before.status == "empty":
            return f"created the database schema ({self.after.describe()})"
        saved = f"; backup first: {self.backup}" if self.backup else ""
        return (
            f"upgraded the database schema from {self.before.describe()} "
            f"to {self.after.describe()}{saved}"
        )


def backup_path(db: Database, now: datetime | None = None) -> Path:
    """Where the backup made before an upgrade goes: ``backups/`` in the data directory."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = db.data_dir if db.data_dir is not None else Path.cwd()
    folder = base / "backups"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / f"clinicmail-{stamp}-before-upgrade.tar.gz"


def upgrade(db: Database, *, make_backup: bool = True) -> Upgrade:
    """Create or upgrade the schema (a backup first when an existing schema changes), then
    open the keys. A schema newer than this version's is refused (:class:`SchemaError`)."""
    before = db.schema_state() if db.exists() else SchemaState(frozenset(), "empty")
    if before.status == "newer":
        db.migrate()  # raises the one-line SchemaError naming the version needed
    saved = None
    if before.status == "older" and make_backup:
        saved = backup_path(db)
        try:
            backup(db, saved)
        except BackupError as exc:
            raise SchemaError(
                f"{exc} (the backup made before an upgrade; 'clinicmail upgrade --no-backup' "
                "skips it)"
            ) from None
    db.migrate()
    return Upgrade(before, db.schema_state(), saved)
