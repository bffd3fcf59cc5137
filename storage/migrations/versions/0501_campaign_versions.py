"""Campaign content as versions in the database (draft → in review → approved → active →
retired).

Revision ID: 0501
Revises: 0500
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "0501"
down_revision = "0500"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("files_sha256", sa.String(length=64), nullable=False),
        sa.Column("based_on", sa.String(length=32), nullable=True),
        sa.Column("editor_ids", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", storage.schema.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.schema.UTCDateTime(), nullable=False),
        sa.Column("submitted_at", storage.schema.UTCDateTime(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=320), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", storage.schema.UTCDateTime(), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("review_due_at", storage.schema.UTCDateTime(), nullable=True),
        sa.Column("activated_at", storage.schema.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_versions")),
        sa.UniqueConstraint(
            "campaign_id", "number", name=op.f("uq_campaign_versions_campaign_id_number")
        ),
    )
    op.create_index(
        "ix_campaign_versions_campaign_id_state",
        "campaign_versions",
        ["campaign_id", "state"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_versions_campaign_id_state", table_name="campaign_versions")
    op.drop_table("campaign_versions")
