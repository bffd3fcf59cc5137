"""Account changes with their audit entries, as the console's ops page and ``clinicmail users``
make them. ``actor`` is the staff member making the change; None means the command line."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from staff import accounts, audit
from staff.accounts import StaffUser


def add(
    conn: Connection, actor: StaffUser | None, email: str, role: str, password: str, now: datetime
) -> StaffUser:
    """Create an account. Raises :class:`~staff.accounts.AccountError` or
    :class:`~staff.passwords.WeakPassword`."""
    user = accounts.add_user(conn, email, role, password, now)
    audit.record(conn, actor, "staff.add", "staff", str(user.id), now, {"role": role})
    return user


def disable(conn: Connection, actor: StaffUser | None, email: str, now: datetime) -> StaffUser:
    """Disable the account and end its sessions."""
    user = accounts.disable(conn, email, now)
    audit.record(conn, actor, "staff.disable", "staff", str(user.id), now)
    return user


def reset_password(
    conn: Connection, actor: StaffUser | None, email: str, password: str, now: datetime
) -> StaffUser:
    """Set a new password and enable the account; its sessions end."""
    user = accounts.reset_password(conn, email, password, now)
    audit.record(conn, actor, "staff.reset_password", "staff", str(user.id), now)
    return user
