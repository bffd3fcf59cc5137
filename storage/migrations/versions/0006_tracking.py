"""Own click tracking: each distinct outbound URL of a rendered (campaign, step, variant).

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracked_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("variant_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", storage.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_links")),
        sa.UniqueConstraint(
            "campaign_id",
            "step_id",
            "variant_id",
            "position",
            "url_hash",
            name=op.f("uq_tracked_links_content"),
        ),
    )


def downgrade() -> None:
    op.drop_table("tracked_links")
