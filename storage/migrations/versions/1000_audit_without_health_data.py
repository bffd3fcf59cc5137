"""The audit log holds no health data: older entries lose their symptom codes and pause dates.

Entries written before this revision by the console's person page kept the symptom codes before
and after a staff change (``subscriber.symptoms``) and the date a pause ended
(``subscriber.pause``). The log outlives an erasure, so those details are rewritten to what
newer entries hold (how many codes were added and removed; the weeks of the pause). The
append-only trigger is lifted for this one statement per row and put back at once.

Revision ID: 1000
Revises: 0500
Create Date: 2026-12-06
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "1000"
down_revision = "0500"
branch_labels = None
depends_on = None

_APPEND_ONLY = "audit_log is append-only"


def _scrubbed(action: str, detail: Any) -> dict[str, Any] | None:
    if isinstance(detail, str):
        detail = json.loads(detail)
    if not isinstance(detail, dict):
        return None
    if action == "subscriber.symptoms" and ("before" in detail or "after" in detail):
        before, after = set(detail.get("before") or ()), set(detail.get("after") or ())
        return {"added": len(after - before), "removed": len(before - after)}
    if action == "subscriber.pause" and "until" in detail:
        return {k: v for k, v in detail.items() if k != "until"}
    return None


def upgrade() -> None:
    bind = op.get_bind()
    log = sa.table(
        "audit_log",
        sa.column("id", sa.Integer),
        sa.column("action", sa.String),
        sa.column("detail", sa.JSON),
    )
    rows = bind.execute(
        sa.select(log.c.id, log.c.action, log.c.detail).where(
            log.c.action.in_(("subscriber.symptoms", "subscriber.pause"))
        )
    ).all()
    changes = [(r.id, _scrubbed(r.action, r.detail)) for r in rows]
    changes = [(i, d) for i, d in changes if d is not None]
    if not changes:
        return
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    for row_id, detail in changes:
        bind.execute(sa.update(log).where(log.c.id == row_id).values(detail=detail))
    if postgres:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    else:
        op.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
        )


def downgrade() -> None:
    """The removed details are gone for good; nothing to undo."""
