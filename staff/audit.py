"""The append-only audit log: who did what, when, to which record.

Only :func:`record` writes; database triggers refuse UPDATE and DELETE on the table, so not even
a bug elsewhere can rewrite history. Targets are named by opaque ids (a subscriber's public id,
a campaign id, a version id), never by an address or a name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from staff.accounts import StaffUser
from staff.tables import audit_log

CLI_ACTOR = "cli"


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any] | None


def record(
    conn: Connection,
    actor: StaffUser | None,
    action: str,
    target_type: str,
    target_id: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry; ``actor`` None means the command line."""
    conn.execute(
        insert(audit_log).values(
            at=now,
            actor_id=actor.id if actor else None,
            actor=actor.email if actor else CLI_ACTOR,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail,
        )
    )


# What a workflow step calls to write its entry: (conn, action, target type, target id, detail).
Writer = Callable[[Connection, str, str, str, dict[str, Any] | None], None]


def writer(actor: StaffUser | None, now: datetime) -> Writer:
    """:func:`record` as ``actor`` at ``now``, in the form a workflow step takes (it writes the
    entry on the step's own connection, so both commit together)."""

    def write(
        conn: Connection,
        action: str,
        target_type: str,
        target_id: str,
        detail: dict[str, Any] | None,
    ) -> None:
        record(conn, actor, action, target_type, target_id, now, detail)

    return write


def entries(
    conn: Connection,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    limit: int = 200,
    actor: str | None = None,
    action: str | None = None,
    before: int | None = None,
) -> list[Entry]:
    """Newest first, optionally for one record, one actor or actions starting with ``action``;
    ``before`` (an entry id) is the keyset cursor: only entries older than that one."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where(audit_log.c.action.startswith(action, autoescape=True))
    if target_type is not None:
        query = query.where(audit_log.c.target_type == target_type)
    if target_id is not None:
        query = query.where(audit_log.c.target_id == target_id)
    return [
        Entry(
            id=r.id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            target_type=r.target_type,
            target_id=r.target_id,
            detail=r.detail,
        )
        for r in conn.execute(query)
    ]
