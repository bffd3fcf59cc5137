"""One person's engagement history for the staff console's timeline: provider events on their
emails and their check-in answers. Read-only; only that person's rows.

The timeline joins the ledger's ``sends`` with the provider events in one statement, which the
ledger cannot do (it sits below engagement), so this module reads the table itself: one of the
two allowed exceptions in ``tests/test_ledger_ownership.py``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from campaigns.ledger import sends
from engagement.tables import email_events
from subscribers.tables import subscriber_activity


def events_of(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    """Every stored event about the person's emails, oldest first (no URLs: they hold tokens)."""
    e, s = email_events.c, sends.c
    rows = conn.execute(
        select(
            e.occurred_at,
            e.received_at,
            e.kind,
            e.machine,
            e.bounce_class,
            s.campaign_id,
            s.step_id,
        )
        .select_from(email_events.join(sends, s.send_id == e.send_id))
        .where(s.subscriber_id == subscriber_id)
        .order_by(e.occurred_at, e.id)
    )
    return [
        {
            "at": r.occurred_at or r.received_at,
            "kind": r.kind,
            "machine": bool(r.machine),
            "bounce_class": r.bounce_class,
            "campaign_id": r.campaign_id,
            "step_id": r.step_id,
        }
        for r in rows
    ]


def checkins_of(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    """The person's check-in answers: the latest answer per email, when first and last given."""
    a = subscriber_activity.c
    rows = conn.execute(
        select(a.campaign_id, a.step_id, a.value, a.count, a.first_at, a.last_at)
        .where(a.subscriber_id == subscriber_id, a.kind == "checkin")
        .order_by(a.last_at)
    )
    return [dict(r._mapping) for r in rows]
