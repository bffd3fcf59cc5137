"""Subscriber activity: human opens, clicks and check-in answers per (person, campaign, step).

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber_activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=16), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", storage.schema.UTCDateTime(), nullable=False),
        sa.Column("last_at", storage.schema.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_activity_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriber_activity")),
        sa.UniqueConstraint(
            "subscriber_id",
            "kind",
            "campaign_id",
            "step_id",
            name=op.f("uq_subscriber_activity_subscriber_id_kind_campaign_id_step_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("subscriber_activity")
