"""Personal follow-up as a tracked task: one row per red-flag signup or "worse" check-in,
closed by a clinician or ops member with an outcome and a note.

Revision ID: 1700
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "1700"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "followups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("source_key", sa.String(length=80), nullable=False),
        sa.Column("reported", sa.JSON(), nullable=False),
        sa.Column("opened_at", storage.schema.UTCDateTime(), nullable=False),
        sa.Column("due_at", storage.schema.UTCDateTime(), nullable=False),
        sa.Column("reminded_at", storage.schema.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("closed_at", storage.schema.UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_followups_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followups")),
        sa.UniqueConstraint("public_id", name=op.f("uq_followups_public_id")),
        sa.UniqueConstraint("subscriber_id", "source_key", name="uq_followups_subscriber_source"),
    )
    op.create_index(
        "ix_followups_open_due",
        "followups",
        ["due_at"],
        unique=False,
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index("ix_followups_subscriber", "followups", ["subscriber_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_followups_subscriber", table_name="followups")
    op.drop_index("ix_followups_open_due", table_name="followups")
    op.drop_table("followups")
