"""What happens when people become confirmed (import, double opt-in) or change symptoms.

Red-flag safety routing (CONTRACT.md): a subscriber with any red-flag code is never enrolled in an
educational drip; they get one safety email at once (system mail ignores the send window) and
staff are alerted. Everyone else is enrolled in the campaigns their symptoms select.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from campaigns import enrollment
from campaigns.loader import Catalog
from scheduler.dispatch import SYSTEM_CAMPAIGN
from scheduler.ledger import SYSTEM
from scheduler.planner import insert_send
from subscribers import store


def on_confirmed(
    conn: Connection, catalog: Catalog, ids: list[int], now: datetime, *, staff_email: str | None
) -> None:
    people = store.profiles(conn, ids)
    calm = []
    for person in people.values():
        if person.status != store.CONFIRMED:
            continue
        if person.red_flag:
            enrollment.leave_all(conn, person.id, now)
            queue_safety(conn, person.id, now, staff_email=staff_email)
        else:
            calm.append(person)
    enrollment.enroll(conn, catalog, calm, now)


def on_signup(
    conn: Connection, subscriber_id: int, now: datetime, *, staff_email: str | None
) -> None:
    """A new (unconfirmed) signup gets its confirmation email. One who reported a warning sign
    also gets the safety email at once, before confirming: it must not wait on a click."""
    _queue_system(conn, subscriber_id, "confirm", now)
    person = store.profiles(conn, [subscriber_id]).get(subscriber_id)
    if person is not None and person.red_flag:
        queue_safety(conn, subscriber_id, now, staff_email=staff_email)


def queue_safety(
    conn: Connection, subscriber_id: int, now: datetime, *, staff_email: str | None
) -> None:
    """One safety email per person, ever (the ledger's unique key makes this idempotent)."""
    _queue_system(conn, subscriber_id, "safety", now)
    if staff_email:
        _queue_system(conn, subscriber_id, "staff-alert", now)


def _queue_system(conn: Connection, subscriber_id: int, step_id: str, now: datetime) -> None:
    insert_send(
        conn,
        subscriber_id=subscriber_id,
        campaign_id=SYSTEM_CAMPAIGN,
        step_id=step_id,
        variant_id="default",
        kind=SYSTEM,
        now=now,
    )
