"""Suppression entries say how they were hashed: ``hmac-sha256`` (keyed, from now on) or
``sha256`` (every entry written before; the default, so existing rows are marked as such).

Revision ID: 0200
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0200"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.add_column(
            sa.Column("scheme", sa.String(length=16), server_default="sha256", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_column("scheme")
