"""List health: the sunset policy's per-person state, and indexes for the daily complaint rate.

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "0008"
down_revision = "0001"
# The indexes below are on tables other branches create.
depends_on = ("0003",)
branch_labels = None


def upgrade() -> None:
    op.create_table(
        "sunset",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cycles", sa.Integer(), nullable=False),
        sa.Column("asked_at", storage.schema.UTCDateTime(), nullable=False),
        sa.Column("kept_at", storage.schema.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_sunset_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", name=op.f("pk_sunset")),
    )
    op.create_index(op.f("ix_sunset_state"), "sunset", ["state"], unique=False)
    op.create_index(
        op.f("ix_email_events_kind_occurred_at"),
        "email_events",
        ["kind", "occurred_at"],
        unique=False,
    )
    op.create_index(op.f("ix_sends_sent_at"), "sends", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sends_sent_at"), table_name="sends")
    op.drop_index(op.f("ix_email_events_kind_occurred_at"), table_name="email_events")
    op.drop_index(op.f("ix_sunset_state"), table_name="sunset")
    op.drop_table("sunset")
