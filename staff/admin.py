"""Account changes with their audit entries, as the console's ops page and ``clinicmail users``
make them. ``actor`` is the staff member making the change; None means the command line.

Passwords arrive already hashed (:func:`staff.accounts.new_password`, called before the
transaction opens), so no argon2 hash runs while these hold a write lock.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from staff import accounts, audit
from staff.accounts import StaffUser


def add(
    conn: Connection, actor: StaffUser | None, email: str, role: str, digest: str, now: datetime
) -> StaffUser:
    """Create an account. Raises :class:`~staff.accounts.AccountError`."""
    user = accounts.add_user(conn, email, role, digest, now)
    audit.record(conn, actor, "staff.add", "staff", str(user.id), now, {"role": role})
    return user


def disable(conn: Connection, actor: StaffUser | None, email: str, now: datetime) -> StaffUser:
    """Disable the account and end its sessions. Raises
    :class:`~staff.accounts.NoSuchAccount` or :class:`~staff.accounts.AccountConflict`
    (your own account)."""
    user = accounts.disable(conn, email, now, by=actor)
    audit.record(conn, actor, "staff.disable", "staff", str(user.id), now)
    return user


def reset_password(
    conn: Connection, actor: StaffUser | None, email: str, digest: str, now: datetime
) -> StaffUser:
    """Set a new password, enable the account and lift its lockout; its sessions end."""
    user = accounts.reset_password(conn, email, digest, now)
    audit.record(conn, actor, "staff.reset_password", "staff", str(user.id), now)
    return user


def unlock(
    conn: Connection, actor: StaffUser | None, email: str, now: datetime
) -> tuple[StaffUser, bool]:
    """Lift the account's lockout; returns the account and whether it was locked."""
    user, was_locked = accounts.unlock(conn, email, now)
    audit.record(
        conn, actor, "staff.unlock", "staff", str(user.id), now, {"was_locked": was_locked}
    )
    return user, was_locked
