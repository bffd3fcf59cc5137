"""Episodes: a person who finished or left a series may start it again for a new episode of
pain, so the send ledger's one-email-per-step key becomes (subscriber, campaign, step, episode)
and each enrollment records which episode it is in and when that episode began.

Every existing row is episode 1. On SQLite the key change recreates ``sends``; its partial
indexes are dropped first and made again afterwards, exactly as 0301 and 0900 made them.

Revision ID: 1900
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "1900"
down_revision = "0001"
# The ledger's partial indexes (0301, 0900) are remade here after the table is recreated.
depends_on = ("0301", "0900")
branch_labels = None

_READY = "status IN ('pending', 'retry')"
_INDEXES = {
    "ix_sends_ready": (["next_attempt_at", "id"], _READY),
    "ix_sends_ready_email": (
        ["campaign_id", "step_id", "variant_id", "next_attempt_at", "id"],
        _READY,
    ),
    "ix_sends_claimed": (["lease_until"], "status = 'claimed'"),
    "ix_sends_sending": (["lease_until"], "status = 'sending'"),
    "ix_sends_unknown": (["next_attempt_at"], "status = 'unknown'"),
    "ix_sends_ready_system": (["next_attempt_at", "id"], f"{_READY} AND kind = 'system'"),
    "ix_sends_subscriber": (["subscriber_id"], None),
}
_OLD_KEY = "uq_sends_subscriber_id_campaign_id_step_id"
_NEW_KEY = "uq_sends_subscriber_id_campaign_id_step_id_episode"


def _drop_indexes() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="sends")


def _create_indexes() -> None:
    for name, (columns, where) in _INDEXES.items():
        if where is None:
            op.create_index(name, "sends", columns, unique=False)
        else:
            clause = sa.text(where)
            op.create_index(
                name, "sends", columns, unique=False, sqlite_where=clause, postgresql_where=clause
            )


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("episode", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(
            sa.Column("episode_started_at", storage.schema.UTCDateTime(), nullable=True)
        )
    _drop_indexes()
    with op.batch_alter_table("sends", recreate="auto") as batch:
        batch.add_column(sa.Column("episode", sa.Integer(), nullable=False, server_default="1"))
        batch.drop_constraint(_OLD_KEY, type_="unique")
        batch.create_unique_constraint(
            _NEW_KEY, ["subscriber_id", "campaign_id", "step_id", "episode"]
        )
    _create_indexes()


def downgrade() -> None:
    op.execute("DELETE FROM sends WHERE episode > 1")
    _drop_indexes()
    with op.batch_alter_table("sends") as batch:
        batch.drop_constraint(_NEW_KEY, type_="unique")
        batch.create_unique_constraint(_OLD_KEY, ["subscriber_id", "campaign_id", "step_id"])
        batch.drop_column("episode")
    _create_indexes()
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("episode_started_at")
        batch.drop_column("episode")
