"""Staff accounts: add, list, disable, reset a password, unlock, and sign in with the lockout rule.

Lockout: after :data:`MAX_FAILURES` failed sign-ins for one address within :data:`WINDOW`, the
account is locked for :data:`LOCK_FOR`, the right password included. The rule is computed from
the ``login_attempts`` rows alone (a ``lock`` row marks the moment it locked, an ``unlock`` row
the moment ops lifted it or reset the password), so it also covers addresses that have no
account: an attacker learns nothing from which addresses lock.

A sign-in is three steps, and the password is never checked inside a transaction:

1. a short transaction *reserves* a check: it refuses when the address is locked or when the
   failures plus the checks still in flight already reach :data:`MAX_FAILURES`, and otherwise
   writes a ``check`` row;
2. the password is verified with no transaction open (argon2id, a bounded number at once);
3. a short transaction turns the ``check`` row into ``success`` or ``failure`` and writes the
   ``lock`` row when this failure is the fifth.

Steps 1 and 3 are serialised per address: SQLite's ``BEGIN IMMEDIATE`` takes the one write
lock, and on PostgreSQL a transaction-scoped advisory lock keyed by the address does the same.
So however many attempts arrive at once, at most :data:`MAX_FAILURES` passwords are checked
before the lock, and an attempt that arrives after them is refused unchecked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Update, delete, func, insert, select, text, update

from core.errors import InputError
from staff.passwords import PasswordsBusy, burn_time, hash_password, verify
from staff.roles import ROLES, Role
from staff.tables import login_attempts, staff_sessions, staff_users
from storage import Database
from subscribers.addresses import InvalidAddress, normalize

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)

SUCCESS, FAILURE, LOCKED, LOCK = "success", "failure", "locked", "lock"
CHECK, UNLOCK = "check", "unlock"  # a check in flight; a lock lifted (unlock or reset)


class AccountError(InputError, ValueError):
    """A user error about an account (unknown, duplicate, bad role); one plain line."""


class NoSuchAccount(AccountError):
    """The address or id names no account (the console answers 404)."""


class AccountConflict(AccountError):
    """The change cannot apply to this account, such as disabling your own (409)."""


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


def new_password(email: str, password: str) -> str:
    """Check the policy for this account's new password and hash it; raises
    :class:`~staff.passwords.WeakPassword`. Call it *before* opening the transaction that stores
    the digest: a hash never runs while a write lock is held."""
    address, _ = email_key(email)
    return hash_password(password, user_inputs=(address, address.split("@", 1)[0]))


def add_user(conn: Connection, email: str, role: str, digest: str, now: datetime) -> StaffUser:
    """Create an account with a digest from :func:`new_password`. Raises :class:`AccountError`."""
    address, key = email_key(email)
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if find(conn, address) is not None:
        raise AccountError(f"there is already an account for {address}")
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
    """The account for ``email``; raises :class:`NoSuchAccount`."""
    user = find(conn, email)
    if user is None:
        raise NoSuchAccount(f"there is no account for {email_key(email)[0]}")
    return user


def require_id(conn: Connection, user_id: int) -> StaffUser:
    """The account with this id; raises :class:`NoSuchAccount`."""
    user = get(conn, user_id)
    if user is None:
        raise NoSuchAccount("there is no such account")
    return user


def all_users(conn: Connection) -> list[StaffUser]:
    rows = conn.execute(select(*_COLUMNS).order_by(staff_users.c.email_key)).all()
    return [_user(r) for r in rows]


def disable(
    conn: Connection, email: str, now: datetime, *, by: StaffUser | None = None
) -> StaffUser:
    """Disable the account and end its sessions at once. Raises :class:`NoSuchAccount`, or
    :class:`AccountConflict` when ``by`` (the staff member acting) names their own account."""
    user = require(conn, email)
    if by is not None and by.id == user.id:
        raise AccountConflict("you cannot disable your own account")
    conn.execute(
        update(staff_users).where(staff_users.c.id == user.id).values(active=False, updated_at=now)
    )
    conn.execute(delete(staff_sessions).where(staff_sessions.c.user_id == user.id))
    return user


def reset_password(conn: Connection, email: str, digest: str, now: datetime) -> StaffUser:
    """Set a new password (a digest from :func:`new_password`), re-enable the account, lift
    any lockout and end its sessions (signed-in devices must sign in again with the new
    password). Raises :class:`NoSuchAccount`."""
    user = require(conn, email)
    conn.execute(
        update(staff_users)
        .where(staff_users.c.id == user.id)
        .values(password_hash=digest, active=True, updated_at=now, password_changed_at=now)
    )
    conn.execute(delete(staff_sessions).where(staff_sessions.c.user_id == user.id))
    _unlock(conn, email_key(user.email)[1], now)
    return user


def unlock(conn: Connection, email: str, now: datetime) -> tuple[StaffUser, bool]:
    """Lift the lockout on the account and forget its failed attempts so far. Returns the
    account and whether it was locked. Raises :class:`NoSuchAccount`."""
    user = require(conn, email)
    key = email_key(user.email)[1]
    was_locked = locked_until(conn, key, now) is not None
    _unlock(conn, key, now)
    return user, was_locked


def locks(conn: Connection, users: list[StaffUser], now: datetime) -> dict[int, datetime]:
    """For each of these accounts that is locked now, when its lock ends."""
    found = {u.id: locked_until(conn, email_key(u.email)[1], now) for u in users}
    return {user_id: until for user_id, until in found.items() if until is not None}


def _unlock(conn: Connection, key: str, now: datetime) -> None:
    conn.execute(insert(login_attempts).values(email_key=key, outcome=UNLOCK, at=now))


@dataclass(frozen=True)
class SignIn:
    """The outcome of :func:`sign_in`: ``user`` is set only on success; ``locked_until`` when the
    address is locked; ``busy`` when checks already in flight use up what may be tried now."""

    user: StaffUser | None
    locked_until: datetime | None = None
    busy: bool = False


def _marks(conn: Connection, key: str) -> dict[str, datetime]:
    """The latest success, lock and unlock for this address."""
    rows = conn.execute(
        select(login_attempts.c.outcome, func.max(login_attempts.c.at))
        .where(
            login_attempts.c.email_key == key,
            login_attempts.c.outcome.in_((SUCCESS, LOCK, UNLOCK)),
        )
        .group_by(login_attempts.c.outcome)
    ).all()
    return {outcome: at for outcome, at in rows}


def locked_until(conn: Connection, key: str, now: datetime) -> datetime | None:
    """When the lock on this address ends, or None when it is not locked."""
    marks = _marks(conn, key)
    last_lock = marks.get(LOCK)
    if last_lock is None or (UNLOCK in marks and marks[UNLOCK] >= last_lock):
        return None
    if last_lock + LOCK_FOR > now:
        return last_lock + LOCK_FOR
    return None


def _counted(conn: Connection, key: str, now: datetime, outcomes: tuple[str, ...]) -> int:
    """Attempts with these outcomes that count toward a lock: within the window, after the last
    success or unlock, and after the last lock ended (a lock that has run out starts afresh)."""
    since = now - WINDOW
    marks = _marks(conn, key)
    lifted = UNLOCK in marks and LOCK in marks and marks[UNLOCK] >= marks[LOCK]
    for outcome, at in marks.items():
        since = max(since, at + LOCK_FOR if outcome == LOCK and not lifted else at)
    return int(
        conn.execute(
            select(func.count()).where(
                login_attempts.c.email_key == key,
                login_attempts.c.outcome.in_(outcomes),
                login_attempts.c.at > since,
            )
        ).scalar_one()
    )


def _serialise(conn: Connection, key: str) -> None:
    """Make this transaction the only one deciding about ``key`` until it ends. SQLite's
    ``BEGIN IMMEDIATE`` already holds the database's one write lock; PostgreSQL takes a
    transaction-scoped advisory lock on a 64-bit number derived from the address."""
    if conn.dialect.name == "postgresql":
        number = int.from_bytes(hashlib.sha256(b"login:" + key.encode()).digest()[:8], signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:n)"), {"n": number})


@dataclass(frozen=True)
class _Reserved:
    attempt_id: int
    user_id: int | None
    password_hash: str | None
    active: bool


def _reserve(conn: Connection, key: str, now: datetime) -> _Reserved | SignIn:
    _serialise(conn, key)
    until = locked_until(conn, key, now)
    if until is not None:
        conn.execute(insert(login_attempts).values(email_key=key, outcome=LOCKED, at=now))
        return SignIn(None, locked_until=until)
    if _counted(conn, key, now, (FAILURE, CHECK)) >= MAX_FAILURES:
        conn.execute(insert(login_attempts).values(email_key=key, outcome=LOCKED, at=now))
        return SignIn(None, busy=True)
    row = conn.execute(
        select(staff_users.c.id, staff_users.c.password_hash, staff_users.c.active).where(
            staff_users.c.email_key == key
        )
    ).first()
    attempt_id = conn.execute(
        insert(login_attempts)
        .values(email_key=key, outcome=CHECK, at=now)
        .returning(login_attempts.c.id)
    ).scalar_one()
    if row is None:
        return _Reserved(attempt_id, None, None, False)
    return _Reserved(attempt_id, row.id, row.password_hash, bool(row.active))


def _settle(attempt_id: int, outcome: str) -> Update:
    return (
        update(login_attempts)
        .where(login_attempts.c.id == attempt_id, login_attempts.c.outcome == CHECK)
        .values(outcome=outcome)
    )


def sign_in(db: Database, email: str, password: str, now: datetime) -> SignIn:
    """Check a sign-in and record the attempt (see the module docstring for the steps). Never
    raises for bad input: text that is not an address is simply a failed sign-in. Raises
    :class:`~staff.passwords.PasswordsBusy` when no hashing slot came free in time; that
    attempt is recorded as refused and does not count toward a lock."""
    try:
        _, key = normalize(email)
    except InvalidAddress:
        burn_time(password)
        return SignIn(None)
    with db.begin() as conn:
        reserved = _reserve(conn, key, now)
    if isinstance(reserved, SignIn):
        return reserved
    try:
        if reserved.password_hash is None:
            burn_time(password)
            ok = False
        else:
            ok = verify(reserved.password_hash, password) and reserved.active
    except PasswordsBusy:
        with db.begin() as conn:
            conn.execute(_settle(reserved.attempt_id, LOCKED))
        raise
    with db.begin() as conn:
        _serialise(conn, key)
        if ok:
            until = locked_until(conn, key, now)
            if until is not None:  # locked by another attempt's failure meanwhile
                conn.execute(_settle(reserved.attempt_id, LOCKED))
                return SignIn(None, locked_until=until)
            conn.execute(_settle(reserved.attempt_id, SUCCESS))
            assert reserved.user_id is not None
            return SignIn(get(conn, reserved.user_id))
        conn.execute(_settle(reserved.attempt_id, FAILURE))
        if locked_until(conn, key, now) is None and (
            _counted(conn, key, now, (FAILURE,)) >= MAX_FAILURES
        ):
            conn.execute(insert(login_attempts).values(email_key=key, outcome=LOCK, at=now))
            return SignIn(None, locked_until=now + LOCK_FOR)
    return SignIn(None)
