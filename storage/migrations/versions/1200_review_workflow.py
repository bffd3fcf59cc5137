"""One review workflow: a revision number on every reviewed row (optimistic concurrency) and
a newsletter's files as imported from the command line.

Revision ID: 1200
Revises: 0700
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "1200"
down_revision = "0700"
branch_labels = None
depends_on = "0501"  # campaign_versions


def upgrade() -> None:
    with op.batch_alter_table("campaign_versions") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("newsletters") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("sources", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("newsletters") as batch:
        batch.drop_column("sources")
        batch.drop_column("revision")
    with op.batch_alter_table("campaign_versions") as batch:
        batch.drop_column("revision")
