"""One ops-alert queue: alerts to staff about the service itself, raised by their producers and
sent by one deliverer. Alerts still waiting in the old per-producer state (the transport
breaker's, the complaint rate's, the broken campaigns' and the set-aside emails' ``kv`` rows)
move into it.

Revision ID: 2100
Revises: 0001
Create Date: 2026-12-06
"""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import storage.schema

revision = "2100"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    alerts = op.create_table(
        "ops_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("raised_at", storage.schema.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", storage.schema.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_alerts")),
        sa.UniqueConstraint("alert_id", name=op.f("uq_ops_alerts_alert_id")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_ops_alerts_kind_key")),
    )
    assert alerts is not None
    _move_waiting_alerts(alerts)


def _move_waiting_alerts(alerts: sa.Table) -> None:
    conn = op.get_bind()
    kv = sa.table("kv", sa.column("key", sa.String), sa.column("value", sa.Text))
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []

    def add(kind: str, key: str, variables: dict[str, Any]) -> None:
        rows.append(
            {
                "alert_id": uuid.uuid4().hex,
                "kind": kind,
                "key": key[:255],
                "variables": variables,
                "raised_at": now,
                "attempts": 0,
            }
        )

    def state(key: str) -> dict[str, Any]:
        raw = conn.execute(sa.select(kv.c.value).where(kv.c.key == key)).scalar()
        return json.loads(raw) if raw else {}

    def save(key: str, value: dict[str, Any]) -> None:
        conn.execute(kv.update().where(kv.c.key == key).values(value=json.dumps(value)))

    breaker = state("delivery.transport_health")
    if breaker.get("alert") == "pending":
        add(
            "transport-alert",
            breaker.get("since") or breaker.get("alert_id") or "migrated",
            {
                "since": (breaker.get("since") or "")[:19].replace("T", " "),
                "failures": max(int(breaker.get("failures") or 0), 3),
                "error": breaker.get("last_error") or "no answer",
            },
        )
    if breaker:
        breaker.pop("alert", None)
        breaker.pop("alert_id", None)
        save("delivery.transport_health", breaker)

    complaints = state("engagement.complaints")
    for a in complaints.pop("pending", []):
        add(
            "complaint-alert",
            f"{a['day']}/{a['level']}/{a.get('queued_at', a['id'])}",
            {
                "level": a["level"],
                "day": a["day"],
                "complaints": a["complaints"],
                "volume": a["volume"],
                "rate": f"{a['rate'] * 100:.2f}%",
                "paused": bool(a.get("paused")),
                "alert_limit": "0.1%",
                "pause_limit": "0.3%",
                "min_volume": 1000,
            },
        )
    if complaints:
        save("engagement.complaints", complaints)

    broken = state("campaigns.broken")
    waiting = sorted(c for c, v in broken.get("campaigns", {}).items() if not v.get("alerted"))
    if waiting:
        entries = broken["campaigns"]
        add(
            "campaign-alert",
            "|".join(f"{c}@{entries[c].get('since')}" for c in waiting),
            {
                "count": len(waiting),
                "campaigns": ", ".join(waiting),
                "problems": [p for c in waiting for p in entries[c].get("problems", [])][:50],
            },
        )
    for v in broken.get("campaigns", {}).values():
        v.pop("alerted", None)
    if broken:
        save("campaigns.broken", broken)

    held = state("delivery.set_aside")
    for k, v in held.get("emails", {}).items():
        if not v.pop("alerted", True):
            add(
                "message-alert",
                f"{k}@{v.get('since')}",
                {"email": "/".join(k.split("|", 2)), "reason": v.get("reason") or "refused"},
            )
        v.pop("alert_id", None)
    if held:
        save("delivery.set_aside", held)

    if rows:
        op.bulk_insert(alerts, rows)


def downgrade() -> None:
    op.drop_table("ops_alerts")
