"""Everything held about one person across the packages: the export (data portability) and the
erasure (the right to be forgotten) that ``clinicmail subscribers export|erase`` and the
console's person page both use. :mod:`subscribers.privacy` owns the person's own rows; this
module adds what the other packages hold about them (enrollments, the send ledger, provider
events, the sunset state, stored messages, the audit log's entries about them).

The audit log is append-only and outlives an erasure: its entries name a person only by their
opaque public id and never hold health data (no symptom codes, no dates of a pause, no name or
address), so what stays after an erasure says that staff did something to some record, not who
it was or what ails them. Entries from the command line are written here, with the actor
"cli", as the console writes its own."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from campaigns import goals
from engagement import followups
from outgoing import events as outgoing_events
from staff.audit import Writer
from storage import Database
from subscribers.privacy import Erasure, Section
from subscribers.tables import subscribers


def _enrollments(conn: Connection, sid: int) -> list[dict[str, Any]]:
    from campaigns.tables import enrollments
    from subscribers.privacy import row_dict

    rows = conn.execute(
        select(enrollments).where(enrollments.c.subscriber_id == sid).order_by(enrollments.c.id)
    ).mappings()
    return [row_dict(r, skip=("id", "subscriber_id")) for r in rows]


def _sends(conn: Connection, sid: int) -> list[dict[str, Any]]:
    """The send ledger without content (what was sent when, never the message itself)."""
    from campaigns.ledger_reads import rows_of
    from subscribers.privacy import row_dict

    return [row_dict(r) for r in rows_of(conn, sid)]


def _episodes(conn: Connection, sid: int) -> list[dict[str, Any]]:
    """Each series the person was in, per episode of pain (campaigns.enrollment.episodes_of)."""
    from campaigns.enrollment import episodes_of
    from subscribers.privacy import row_dict

    return [row_dict(e) for e in episodes_of(conn, sid)]


def _goal_events(conn: Connection, sid: int) -> list[dict[str, Any]]:
    """Events other systems reported about the person (booked, attended …), JSON-ready."""
    from subscribers.privacy import row_dict

    return [row_dict(e) for e in goals.events_of(conn, sid)]


def _send_ids(conn: Connection, key: str) -> list[str]:
    from campaigns.ledger_reads import send_ids_of_key

    return send_ids_of_key(conn, key)


def _events(conn: Connection, sid: int) -> list[dict[str, Any]]:
    """Provider events and our own tracking hits, with their raw payloads (IP, user agent, URL)."""
    from engagement.personal import events_of
    from subscribers.tables import subscribers

    key = conn.execute(select(subscribers.c.email_key).where(subscribers.c.id == sid)).scalar_one()
    return events_of(conn, key, _send_ids(conn, key))


def _sunset(conn: Connection, sid: int) -> list[dict[str, Any]]:
    from engagement.personal import sunset_of

    state = sunset_of(conn, sid)
    return [state] if state else []


def _messages(conn: Connection, sid: int) -> list[dict[str, Any]]:
    """Messages the outbox transport stored for the person (subject and time; the text is the
    clinic's email with their name in it)."""
    from subscribers.privacy import row_dict
    from transports.tables import outbox

    rows = conn.execute(
        select(outbox.c.send_id, outbox.c.recipient, outbox.c.subject, outbox.c.created_at)
        .where(outbox.c.subscriber_id == sid)
        .order_by(outbox.c.id)
    ).mappings()
    return [row_dict(r) for r in rows]


def drop_events(conn: Connection, subscriber_ids: list[int], email_keys: list[str]) -> int:
    """Delete the stored events about these people (signups that expire unconfirmed)."""
    from campaigns.ledger_reads import send_ids_of
    from engagement.personal import forget

    return forget(conn, email_keys, send_ids_of(conn, subscriber_ids))


# Tables that can hold rows about a person: vacuumed after an erasure on PostgreSQL.
PERSONAL_TABLES = (
    "subscribers",
    "subscriber_symptoms",
    "consent_events",
    "subscriber_activity",
    "enrollments",
    "sends",
    "outbox",
    "email_events",
    "sunset",
    "goal_events",
)


def _public_id(conn: Connection, sid: int) -> str | None:
    from subscribers.tables import subscribers

    found = conn.execute(
        select(subscribers.c.public_id).where(subscribers.c.id == sid)
    ).scalar_one_or_none()
    return None if found is None else str(found)


def _audit(conn: Connection, sid: int) -> list[dict[str, Any]]:
    """What the audit log holds about the person: who viewed, exported or changed the record."""
    from staff import audit

    public_id = _public_id(conn, sid)
    if public_id is None:
        return []
    return [
        {
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "detail": e.detail,
        }
        for e in reversed(audit.entries(conn, target_type=AUDIT_TARGET, target_id=public_id))
    ]


AUDIT_TARGET = "subscriber"  # the audit log's target type for a person (console.people too)


def record_sections() -> dict[str, Section]:
    """The rows other packages hold about a person, for the CLI export and the console's page."""
    return {
        "enrollments": _enrollments,
        "episodes": _episodes,
        "sends": _sends,
        "events": _events,
        "sunset": _sunset,
        "stored_messages": _messages,
        "goal_events": _goal_events,
        "followups": followups.export_of,
        "audit_log": _audit,
    }


def audit_from_cli(db: Database, email: str, action: str, now: datetime) -> str | None:
    """Write an audit entry with the actor "cli" about the person with ``email`` (by public
    id); returns the public id, or None when nobody has that address (nothing is written)."""
    from staff import audit
    from subscribers.addresses import normalize
    from subscribers.tables import subscribers

    _, key = normalize(email)
    with db.begin() as conn:
        public_id = conn.execute(
            select(subscribers.c.public_id).where(subscribers.c.email_key == key)
        ).scalar_one_or_none()
        if public_id is None:
            return None
        audit.record(conn, None, action, AUDIT_TARGET, str(public_id), now)
    return str(public_id)


def export_json(db: Database, email: str) -> str | None:
    """Everything held about the person with ``email`` as the JSON document the CLI prints and
    the console offers as a download; None when nobody has that address."""
    from subscribers.privacy import export_person

    with db.begin() as conn:
        data = export_person(conn, email, sections=record_sections())
    return None if data is None else json.dumps(data, indent=2, ensure_ascii=False)


def erase_everywhere(
    db: Database, email: str, now: datetime, *, audit: Writer | None = None
) -> tuple[Erasure, bool]:
    """Erase the person with ``email`` from every table, then make it final on disk.

    Used by ``clinicmail subscribers erase`` and the console. Returns the erasure and whether it
    is final on disk (False while another process reads the database: housekeeping finishes it).
    ``audit`` (the console's, as the staff member) writes ``subscriber.erase`` naming the public
    id only, in the erasure's own transaction. Raises ``InvalidAddress``.
    """
    from engagement.personal import forget
    from subscribers.addresses import normalize
    from subscribers.privacy import erase as erase_person
    from subscribers.privacy import scrub
    from transports.tables import outbox

    _, key = normalize(email)
    with db.begin() as conn:
        send_ids = _send_ids(conn, key)  # before the cascade deletes the ledger rows
        public_id = conn.execute(
            select(subscribers.c.public_id).where(subscribers.c.email_key == key)
        ).scalar_one_or_none()
        result = erase_person(conn, email, now)
        if public_id is not None:  # receivers drop what they hold under this id
            outgoing_events.emit(conn, outgoing_events.ERASED, {"subscriber_id": public_id}, now)
            if audit is not None:
                audit(conn, "subscriber.erase", AUDIT_TARGET, str(public_id), None)
        # Cascades remove the outbox rows of this subscriber; this also catches any
        # stored message that reached the address without a subscriber link.
        conn.execute(delete(outbox).where(func.lower(outbox.c.recipient) == key))
        forget(conn, [key], send_ids)  # stored events: raw payloads hold the address
    final = scrub(db, PERSONAL_TABLES)
    return result, final
