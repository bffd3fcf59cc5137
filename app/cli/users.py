"""``clinicmail users add|list|disable|reset-password|unlock``: staff accounts for the console.

Passwords are read from standard input when it is not a terminal (one line), and asked twice,
hidden, when it is. Every change is written to the audit log with the actor "cli".
"""

from __future__ import annotations

import click

from app.cli.context import open_context
from app.cli.errors import fail
from app.cli.options import read_password
from app.cli.output import echo, print_table
from staff import ROLES


@click.group()
def users() -> None:
    """Staff accounts for the console (/admin)."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
def add(email: str, role: str) -> None:
    """Create a console account for EMAIL with a ROLE: marketing (writes and schedules),
    clinician (also approves content) or ops (also manages accounts and delivery)."""
    from staff import accounts, admin
    from storage import utcnow

    ctx = open_context()
    with ctx.db.begin() as conn:
        if accounts.find(conn, email) is not None:  # before asking for a password it would not use
            fail(f"there is already an account for {accounts.email_key(email)[0]}")
    digest = accounts.new_password(email, read_password("Password", confirm=True))
    with ctx.db.begin() as conn:
        user = admin.add(conn, None, email, role, digest, utcnow())
    echo(f"added {user.email} ({user.role})")


@users.command("list")
def list_() -> None:
    """List console accounts: email, role, active or disabled, created."""
    from staff import accounts

    ctx = open_context()
    with ctx.db.begin() as conn:
        people = accounts.all_users(conn)
    if not people:
        echo("no accounts yet: add one with 'clinicmail users add EMAIL --role ops'")
        return
    print_table(
        ("email", "role", "status", "created"),
        (
            (u.email, u.role, "active" if u.active else "disabled", f"{u.created_at:%Y-%m-%d}")
            for u in people
        ),
    )


@users.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Disable the account for EMAIL and end its sessions (reset-password enables it again)."""
    from staff import admin
    from storage import utcnow

    ctx = open_context()
    with ctx.db.begin() as conn:
        user = admin.disable(conn, None, email, utcnow())
    echo(f"disabled {user.email}")


@users.command("reset-password")
@click.argument("email")
def reset_password(email: str) -> None:
    """Set a new password for EMAIL (and enable the account, lifting any lockout); its sessions
    end."""
    from staff import accounts, admin
    from storage import utcnow

    ctx = open_context()
    with ctx.db.begin() as conn:
        accounts.require(conn, email)  # before asking for a password it would not use
    digest = accounts.new_password(email, read_password("New password", confirm=True))
    with ctx.db.begin() as conn:
        user = admin.reset_password(conn, None, email, digest, utcnow())
    echo(f"password reset for {user.email} (any lockout lifted)")


@users.command("unlock")
@click.argument("email")
def unlock(email: str) -> None:
    """Lift the sign-in lockout on EMAIL's account (after 5 failed sign-ins in 15 minutes it
    locks for 15 minutes) and forget its failed attempts so far. Audited."""
    from staff import admin
    from storage import utcnow

    ctx = open_context()
    with ctx.db.begin() as conn:
        user, was_locked = admin.unlock(conn, None, email, utcnow())
    echo(f"unlocked {user.email}" if was_locked else f"{user.email} was not locked; attempts reset")
