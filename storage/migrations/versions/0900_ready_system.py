"""System email first: a partial index of claimable system rows (safety, staff alerts,
confirmations), so a claim finds them ahead of a campaign backlog without walking it.

Revision ID: 0900
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0900"
down_revision = "0001"
branch_labels = None
depends_on = None

WHERE = "status IN ('pending', 'retry') AND kind = 'system'"


def upgrade() -> None:
    op.create_index(
        "ix_sends_ready_system",
        "sends",
        ["next_attempt_at", "id"],
        unique=False,
        sqlite_where=sa.text(WHERE),
        postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_sends_ready_system", table_name="sends")
