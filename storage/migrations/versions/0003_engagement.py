"""Engagement: raw provider events, deduplicated, with a queue of events not yet applied.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("sg_event_id", sa.String(length=128), nullable=True),
        sa.Column("natural_key", sa.String(length=64), nullable=False),
        sa.Column("sg_message_id", sa.String(length=255), nullable=True),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("send_id", sa.String(length=64), nullable=True),
        sa.Column("email_hash", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("bounce_class", sa.String(length=8), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("occurred_at", storage.schema.UTCDateTime(), nullable=True),
        sa.Column("received_at", storage.schema.UTCDateTime(), nullable=False),
        sa.Column("applied_at", storage.schema.UTCDateTime(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_events")),
        sa.UniqueConstraint("natural_key", name=op.f("uq_email_events_natural_key")),
        sa.UniqueConstraint("sg_event_id", name=op.f("uq_email_events_sg_event_id")),
    )
    op.create_index("ix_email_events_send_id", "email_events", ["send_id"], unique=False)
    op.create_index("ix_email_events_email_hash", "email_events", ["email_hash"], unique=False)
    op.create_index(
        "ix_email_events_pending",
        "email_events",
        ["id"],
        unique=False,
        sqlite_where=sa.text("applied_at IS NULL"),
        postgresql_where=sa.text("applied_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("email_events")
