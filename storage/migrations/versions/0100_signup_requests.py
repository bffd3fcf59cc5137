"""Signup requests for addresses already held, kept apart until the owner confirms.

Revision ID: 0100
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "0100"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signup_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("symptoms", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("created_at", storage.schema.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_signup_requests_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_requests")),
        sa.UniqueConstraint("public_id", name=op.f("uq_signup_requests_public_id")),
        sa.UniqueConstraint(
            "subscriber_id",
            "fingerprint",
            name=op.f("uq_signup_requests_subscriber_id_fingerprint"),
        ),
    )
    op.create_index(
        "ix_signup_requests_created_at", "signup_requests", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_signup_requests_created_at", table_name="signup_requests")
    op.drop_table("signup_requests")
