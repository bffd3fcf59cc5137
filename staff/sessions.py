"""Server-side staff sessions with an idle and an absolute timeout.

The browser holds a random token (the cookie); the database holds only its SHA-256 and the
session's CSRF token. Signing in always creates a new session (the id is rotated at login) and
ends the one the browser presented, if any.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from staff.accounts import StaffUser
from staff.tables import staff_sessions, staff_users

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# last_seen_at is written at most this often, so browsing is not one write per request.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Session:
    user: StaffUser
    csrf_token: str
    token_hash: str

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(
            self.csrf_token.encode(), (presented or "").encode()
        )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(conn: Connection, user: StaffUser, now: datetime, *, replacing: str | None = None) -> str:
    """Open a session for ``user`` and return the token for the cookie; ``replacing`` is the
    token the browser presented before signing in, which ends here."""
    if replacing:
        end(conn, replacing)
    token = secrets.token_urlsafe(32)
    conn.execute(
        insert(staff_sessions).values(
            token_hash=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
    )
    return token


def resolve(conn: Connection, token: str | None, now: datetime) -> Session | None:
    """The live session for this cookie value, or None (unknown, expired or account disabled).
    An expired session is deleted on the way."""
    if not token or len(token) > 128:
        return None
    digest = _digest(token)
    row = conn.execute(
        select(
            staff_sessions.c.csrf_token,
            staff_sessions.c.created_at,
            staff_sessions.c.last_seen_at,
            staff_users.c.id,
            staff_users.c.email,
            staff_users.c.role,
            staff_users.c.active,
            staff_users.c.created_at.label("user_created_at"),
        )
        .join(staff_users, staff_users.c.id == staff_sessions.c.user_id)
        .where(staff_sessions.c.token_hash == digest)
    ).first()
    if row is None:
        return None
    if (
        not row.active
        or now - row.last_seen_at > IDLE_TIMEOUT
        or now - row.created_at > ABSOLUTE_TIMEOUT
    ):
        conn.execute(delete(staff_sessions).where(staff_sessions.c.token_hash == digest))
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        conn.execute(
            update(staff_sessions)
            .where(staff_sessions.c.token_hash == digest)
            .values(last_seen_at=now)
        )
    user = StaffUser(
        id=row.id, email=row.email, role=row.role, active=True, created_at=row.user_created_at
    )
    return Session(user=user, csrf_token=row.csrf_token, token_hash=digest)


def end(conn: Connection, token: str) -> None:
    conn.execute(delete(staff_sessions).where(staff_sessions.c.token_hash == _digest(token)))


def purge_expired(conn: Connection, now: datetime) -> int:
    """Delete sessions past either timeout (housekeeping)."""
    result = conn.execute(
        delete(staff_sessions).where(
            (staff_sessions.c.last_seen_at < now - IDLE_TIMEOUT)
            | (staff_sessions.c.created_at < now - ABSOLUTE_TIMEOUT)
        )
    )
    return int(result.rowcount or 0)
