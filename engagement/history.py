"""One person's engagement history for the staff console's timeline: provider events on their
emails and their check-in answers. Read-only; only that person's rows.

The timeline joins the ledger's sends with the provider events in one statement: the ledger's
read API runs it (:func:`campaigns.ledger_reads.events_about_emails_of`), handed the events table
and the columns to read from it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from campaigns.ledger_reads import events_about_emails_of
from engagement.tables import email_events
from subscribers.activity import CHECKIN
from subscribers.tables import subscriber_activity


def events_of(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    """Every stored event about the person's emails, oldest first (no URLs: they hold tokens)."""
    e = email_events.c
    rows = events_about_emails_of(
        conn,
        email_events,
        (e.occurred_at, e.received_at, e.kind, e.machine, e.bounce_class),
        subscriber_id,
        order_by=(e.occurred_at, e.id),
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
        .where(a.subscriber_id == subscriber_id, a.kind == CHECKIN)
        .order_by(a.last_at)
    )
    return [dict(r._mapping) for r in rows]
