"""Who is told about a review step, read from the audit log the review workflow writes in the
same transaction as each step (:mod:`campaigns.review`): the log is the queue, so a notice can
never be lost or sent for a step that rolled back.

- ``<prefix>.submit``: every active clinician except the submitter (someone must review it);
- ``<prefix>.approve`` and ``<prefix>.request_changes``: the author, i.e. the staff member who
  submitted it (the latest console submit entry for that row; a command-line submit has no
  address to tell).

The deliverer (the scheduler) keeps a cursor (the last entry handled) and sends each notice
through the staff-alert path. Notices name content (a campaign and version number, a
newsletter's number) and the reviewer's note, never a subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from staff.accounts import all_users
from staff.tables import audit_log

SUBMITTED, APPROVED, SENT_BACK = "submitted", "approved", "changes_requested"
_EVENTS = {"submit": SUBMITTED, "approve": APPROVED, "request_changes": SENT_BACK}
PREFIXES = {"content": "version", "newsletter": "newsletter"}
CLINICIAN = "clinician"


@dataclass(frozen=True)
class Notice:
    entry_id: int
    event: str  # submitted | approved | changes_requested
    what: str  # version | newsletter
    target_id: str
    label: str  # "spasm-education, version 2", "newsletter 3"
    by: str  # who took the step (a staff address, or "cli")
    note: str
    to: tuple[str, ...]


def _label(what: str, target_id: str, detail: dict[str, object]) -> str:
    if what == "version" and detail.get("campaign"):
        return f"{detail['campaign']}, version {detail.get('number', '?')}"
    return f"{what} {target_id}"


def _author(conn: Connection, target_type: str, target_id: str, before: int) -> str | None:
    """Whoever submitted the row last before entry ``before`` (a staff address), if anyone."""
    t = audit_log
    actor = conn.execute(
        select(t.c.actor)
        .where(
            t.c.target_type == target_type,
            t.c.target_id == target_id,
            t.c.action.like("%.submit"),
            t.c.id < before,
            t.c.actor_id.is_not(None),
        )
        .order_by(t.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return str(actor) if actor else None


def pending(conn: Connection, after: int, since: datetime, limit: int = 100) -> list[Notice]:
    """Review steps logged after entry ``after`` (and no earlier than ``since``, so a new
    installation or an upgrade does not mail about old history), oldest first, each with the
    addresses to tell. A step with nobody to tell is returned with ``to`` empty."""
    t = audit_log
    actions = [f"{p}.{a}" for p in PREFIXES for a in _EVENTS]
    rows = conn.execute(
        select(t)
        .where(t.c.id > after, t.c.at >= since, t.c.action.in_(actions))
        .order_by(t.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return []
    users = [u for u in all_users(conn) if u.active]
    out = []
    for r in rows:
        prefix, _, step = r.action.partition(".")
        what, event = PREFIXES[prefix], _EVENTS[step]
        detail = dict(r.detail or {})
        if event == SUBMITTED:
            to = tuple(u.email for u in users if u.role == CLINICIAN and u.email != r.actor)
        else:
            author = _author(conn, r.target_type, r.target_id, r.id)
            to = (author,) if author and author != r.actor else ()
        out.append(
            Notice(
                entry_id=r.id,
                event=event,
                what=what,
                target_id=r.target_id,
                label=_label(what, r.target_id, detail),
                by=r.actor,
                note=str(detail.get("note") or ""),
                to=to,
            )
        )
    return out


def last_entry(conn: Connection) -> int:
    """The newest audit entry's id (0 when the log is empty)."""
    found = conn.execute(select(audit_log.c.id).order_by(audit_log.c.id.desc()).limit(1))
    return int(found.scalar_one_or_none() or 0)
