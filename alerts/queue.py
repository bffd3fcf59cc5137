"""Raise, list and settle ops alerts (:mod:`alerts`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from alerts.tables import ops_alerts
from storage.sql import dialect_insert
from templates.system import OPS_EMAILS

SENT = "sent"  # the provider accepted it
REFUSED = "refused"  # the provider refused it for good: not retried
UNADDRESSED = "unaddressed"  # no staff address is configured: the ERROR line must do


@dataclass(frozen=True)
class Alert:
    id: int
    alert_id: str
    kind: str
    key: str
    variables: dict[str, Any]
    raised_at: datetime
    attempts: int


def raise_alert(
    conn: Connection, kind: str, key: str, variables: Mapping[str, Any], now: datetime
) -> bool:
    """Queue alert ``kind`` (an ops email's name) for ``key``, once: True when it is new, False
    when an alert of this kind and key was raised before (pending or delivered). Runs in the
    caller's transaction, so the alert exists exactly when the change it reports does."""
    if kind not in OPS_EMAILS:
        raise KeyError(f"{kind!r} is not an ops email")
    result = conn.execute(
        dialect_insert(conn, ops_alerts)
        .values(
            alert_id=uuid.uuid4().hex,
            kind=kind,
            key=key[:255],
            variables=dict(variables),
            raised_at=now,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=[ops_alerts.c.kind, ops_alerts.c.key])
        .returning(ops_alerts.c.id)  # a row back only when it was inserted (any driver)
    )
    return result.first() is not None


def pending(conn: Connection, kind: str | None = None) -> list[Alert]:
    """Alerts not yet delivered, oldest first (of one ``kind`` when given)."""
    a = ops_alerts.c
    query = select(a.id, a.alert_id, a.kind, a.key, a.variables, a.raised_at, a.attempts).where(
        a.delivered_at.is_(None)
    )
    if kind is not None:
        query = query.where(a.kind == kind)
    return [Alert(*row) for row in conn.execute(query.order_by(a.id))]


def attempted(conn: Connection, ids: Iterable[int]) -> None:
    """A try that will be repeated (the transport failed for now)."""
    ids = list(ids)
    if ids:
        conn.execute(
            update(ops_alerts)
            .where(ops_alerts.c.id.in_(ids))
            .values(attempts=ops_alerts.c.attempts + 1)
        )


def delivered(conn: Connection, ids: Iterable[int], outcome: str, now: datetime) -> None:
    """Settle alerts: ``outcome`` is :data:`SENT`, :data:`REFUSED` or :data:`UNADDRESSED`."""
    ids = list(ids)
    if ids:
        conn.execute(
            update(ops_alerts)
            .where(ops_alerts.c.id.in_(ids), ops_alerts.c.delivered_at.is_(None))
            .values(delivered_at=now, outcome=outcome, attempts=ops_alerts.c.attempts + 1)
        )
