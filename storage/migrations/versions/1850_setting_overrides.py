"""The settings a clinic changes in the staff console, stored over the environment's.

Revision ID: 1850
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "1850"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "setting_overrides",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", storage.schema.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_setting_overrides")),
    )


def downgrade() -> None:
    op.drop_table("setting_overrides")
