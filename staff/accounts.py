"""Staff accounts: add, list, disable, reset a password, and sign in with the lockout rule.

Lockout: after :data:`MAX_FAILURES` failed sign-ins for one address within :data:`WINDOW`, the
account is locked for :data:`LOCK_FOR`, the right password included. The rule is computed from
the ``login_attempts`` rows alone (a ``lock`` row marks the moment it locked), so it also covers
addresses that have no account: an attacker learns nothing from which addresses lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select, update

from core.errors import InputError
from staff.passwords import burn_time, hash_password, verify
from staff.roles import ROLES, Role
from staff.tables import login_attempts, staff_sessions, staff_users
from subscribers.addresses import InvalidAddress, normalize

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)

SUCCESS, FAILURE, LOCKED, LOCK = "success", "failure", "locked", "lock"


class AccountError(InputError, ValueError):
    """A user error about an account (unknown, duplicate, bad role); one plain line."""


@dataclass(frozen=True)
class StaffUser:
    id: int
    email: str
    role: Role
    active: bool
    created_at: datetime


def _user(row: object) -> StaffUser:
    r = row._mapping  # type: ignore[attr-defined]
    return StaffUser(
        id=r["id"], email=r["email"], role=r["role"], active=r["active"], created_at=r["created_at"]
    )


_COLUMNS = (
    staff_users.c.id,
    staff_users.c.email,
    staff_users.c.role,
    staff_users.c.active,
    staff_users.c.created_at,
)


def email_key(email: str) -> tuple[str, str]:
    """Return ``(email, key)``; raise :class:`AccountError` for text that is not an address."""
    try:
        return normalize(email)
    except InvalidAddress as exc:
        raise AccountError(str(exc)) from None


def add_user(conn: Connection, email: str, role: str, password: str, now: datetime) -> StaffUser:
    """Create an account. Raises :class:`AccountError` or
    :class:`~staff.passwords.WeakPassword`."""
    address, key = email_key(email)
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if find(conn, address) is not None:
        raise AccountError(f"there is already an account for {address}")
    digest = hash_password(password)
    new_id = conn.execute(
        insert(staff_users)
        .values(
            email=address,
            email_key=key,
            role=role,
            password_hash=digest,
            active=True,
            created_at=now,
            updated_at=now,
            password_changed_at=now,
        )
        .returning(staff_users.c.id)
    ).scalar_one()
    return StaffUser(id=new_id, email=address, role=role, active=True, created_at=now)


def find(conn: Connection, email: str) -> StaffUser | None:
    _, key = email_key(email)
    row = conn.execute(select(*_COLUMNS).where(staff_users.c.email_key == key)).first()
    return _user(row) if row else None


def get(conn: Connection, user_id: int) -> StaffUser | None:
    row = conn.execute(select(*_COLUMNS).where(staff_users.c.id == user_id)).first()
    return _user(row) if row else None


def require(conn: Connection, email: str) -> StaffUser:
    user = find(conn, email)
    if user is None:
        raise AccountError(f"there is no account for {email_key(email)[0]}")
    return user


def all_users(conn: Connection) -> list[StaffUser]:
    rows = conn.execute(select(*_COLUMNS).order_by(staff_users.c.email_key)).all()
    return [_user(r) for r in rows]


def disable(conn: Connection, email: str, now: datetime) -> StaffUser:
    """Disable the account and end its sessions at once."""
    user = require(conn, email)
    conn.execute(
        update(staff_users).where(staff_users.c.id == user.id).values(active=False, updated_at=now)
    )
    conn.execute(delete(staff_sessions).where(staff_sessions.c.user_id == user.id))
    return user


def reset_password(conn: Connection, email: str, password: str, now: datetime) -> StaffUser:
    """Set a new password, re-enable the account and end its sessions (signed-in devices must
    sign in again with the new password)."""
    user = require(conn, email)
    digest = hash_password(password)
    conn.execute(
        update(staff_users)
        .where(staff_users.c.id == user.id)
        .values(password_hash=digest, active=True, updated_at=now, password_changed_at=now)
    )
    conn.execute(delete(staff_sessions).where(staff_sessions.c.user_id == user.id))
    return user


@dataclass(frozen=True)
class SignIn:
    """The outcome of :func:`sign_in`: ``user`` is set only on success."""

    user: StaffUser | None
    locked_until: datetime | None = None


def locked_until(conn: Connection, key: str, now: datetime) -> datetime | None:
    """When the lock on this address ends, or None when it is not locked."""
    last_lock = conn.execute(
        select(func.max(login_attempts.c.at)).where(
            login_attempts.c.email_key == key, login_attempts.c.outcome == LOCK
        )
    ).scalar()
    if last_lock is not None and last_lock + LOCK_FOR > now:
        return last_lock + LOCK_FOR  # type: ignore[no-any-return]
    return None


def _recent_failures(conn: Connection, key: str, now: datetime) -> int:
    """Failures that count toward a lock: within the window, after the last success and after
    the last lock ended (a lock that has run out starts the count afresh)."""
    since = now - WINDOW
    marks = conn.execute(
        select(login_attempts.c.outcome, func.max(login_attempts.c.at))
        .where(login_attempts.c.email_key == key, login_attempts.c.outcome.in_((SUCCESS, LOCK)))
        .group_by(login_attempts.c.outcome)
    ).all()
    for outcome, at in marks:
        since = max(since, at + LOCK_FOR if outcome == LOCK else at)
    return int(
        conn.execute(
            select(func.count()).where(
                login_attempts.c.email_key == key,
                login_attempts.c.outcome == FAILURE,
                login_attempts.c.at > since,
            )
        ).scalar_one()
    )


def sign_in(conn: Connection, email: str, password: str, now: datetime) -> SignIn:
    """Check a sign-in and record the attempt. Never raises for bad input: text that is not an
    address is simply a failed sign-in."""
    try:
        _, key = normalize(email)
    except InvalidAddress:
        burn_time(password)
        return SignIn(None)
    until = locked_until(conn, key, now)
    if until is not None:
        conn.execute(insert(login_attempts).values(email_key=key, outcome=LOCKED, at=now))
        return SignIn(None, locked_until=until)
    row = conn.execute(
        select(staff_users.c.id, staff_users.c.password_hash, staff_users.c.active).where(
            staff_users.c.email_key == key
        )
    ).first()
    ok = False
    if row is None:
        burn_time(password)
    else:
        ok = verify(row.password_hash, password) and bool(row.active)
    if ok:
        assert row is not None
        conn.execute(insert(login_attempts).values(email_key=key, outcome=SUCCESS, at=now))
        return SignIn(get(conn, row.id))
    conn.execute(insert(login_attempts).values(email_key=key, outcome=FAILURE, at=now))
    if _recent_failures(conn, key, now) >= MAX_FAILURES:
        conn.execute(insert(login_attempts).values(email_key=key, outcome=LOCK, at=now))
        return SignIn(None, locked_until=now + LOCK_FOR)
    return SignIn(None)
