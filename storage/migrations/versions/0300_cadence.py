"""Cadence: time-sensitive broadcasts, the content version on each send, and the weekly cap
measured from acceptance.

``subscribers.last_campaign_send_at`` used to be written when an email was planned; it now holds
when the provider accepted the person's last campaign email, so it is recomputed from the ledger
(emails still in flight are seen by the planner as such and wait for their acceptance).

Revision ID: 0300
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0300"
down_revision = "0001"
# broadcasts is created by 0007.
depends_on = ("0007",)
branch_labels = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(
            sa.Column("time_sensitive", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("sends") as batch:
        batch.add_column(sa.Column("content_version", sa.String(length=64), nullable=True))
    op.execute(
        """
        UPDATE subscribers SET last_campaign_send_at = (
            SELECT max(sends.sent_at) FROM sends
            WHERE sends.subscriber_id = subscribers.id
              AND sends.kind = 'campaign' AND sends.status = 'sent'
        )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.drop_column("content_version")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("time_sensitive")
