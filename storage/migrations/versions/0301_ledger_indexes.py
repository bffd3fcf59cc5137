"""Ledger indexes for an O(due) tick: one partial index per transition that looks for rows.

``ix_sends_ready`` now holds only claimable rows (pending, retry); ``ix_sends_ready_email`` finds
them by email (campaign, step, variant) so a claim fills a provider request; expired claims and
sends are found through their own small indexes, and ``unknown`` rows through
``ix_sends_unknown``.

Revision ID: 0301
Revises: 0300
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0301"
down_revision = "0300"
branch_labels = None
depends_on = None

_PARTIAL = {
    "ix_sends_ready": (["next_attempt_at", "id"], "status IN ('pending', 'retry')"),
    "ix_sends_ready_email": (
        ["campaign_id", "step_id", "variant_id", "next_attempt_at", "id"],
        "status IN ('pending', 'retry')",
    ),
    "ix_sends_claimed": (["lease_until"], "status = 'claimed'"),
    "ix_sends_sending": (["lease_until"], "status = 'sending'"),
    "ix_sends_unknown": (["next_attempt_at"], "status = 'unknown'"),
}


def upgrade() -> None:
    op.drop_index("ix_sends_ready", table_name="sends")
    for name, (columns, where) in _PARTIAL.items():
        op.create_index(
            name,
            "sends",
            columns,
            unique=False,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    for name in _PARTIAL:
        op.drop_index(name, table_name="sends")
    where = "status IN ('pending', 'retry', 'claimed', 'sending')"
    op.create_index(
        "ix_sends_ready",
        "sends",
        ["next_attempt_at", "id"],
        unique=False,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
