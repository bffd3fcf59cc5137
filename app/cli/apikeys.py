"""``clinicmail apikeys create|list|revoke``: keys for the clinic's other systems (``/api/v1``).

A key is printed once, alone on the last line of ``create``'s output; only its hash is kept.
Creating and revoking are written to the audit log with the actor "cli".
"""

from __future__ import annotations

import click

from app.cli.context import open_context
from app.cli.output import echo, print_table


@click.group()
def apikeys() -> None:
    """Keys for the clinic's other systems to use the API (/api/v1)."""


@apikeys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    metavar="SCOPE[,SCOPE…]",
    help="What the key may do: subscribers:read, subscribers:write, events:write, "
    "stats:read, webhooks:manage (comma-separated, or the option repeated).",
)
def create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key called NAME with the given scopes; the key is shown this once, on the last
    line (store it in the other system's secrets)."""
    from api import keys
    from staff import audit
    from storage import utcnow

    wanted = keys.parse_scopes(scopes)  # before the database: a typo costs nothing
    ctx = open_context()
    now = utcnow()
    with ctx.db.begin() as conn:
        made, key = keys.create(conn, name, wanted, now)
        audit.record(
            conn, None, "apikey.create", "apikey", made.prefix, now, {"scopes": list(wanted)}
        )
    echo(f"created API key {made.name} ({made.prefix}…) with {', '.join(made.scopes)}")
    echo("Copy the key now: it is not stored and cannot be shown again.")
    echo(key)


@apikeys.command("list")
def list_() -> None:
    """List keys: name, prefix, scopes, created, last used, revoked (never the key)."""
    from api import keys

    ctx = open_context()
    with ctx.db.begin() as conn:
        found = keys.all_keys(conn)
    if not found:
        echo("no API keys yet: create one with 'clinicmail apikeys create NAME --scope …'")
        return
    print_table(
        ("name", "prefix", "scopes", "created", "last used", "status"),
        (
            (
                k.name,
                k.prefix,
                ",".join(k.scopes),
                k.created_at.strftime("%Y-%m-%d %H:%M"),
                k.last_used_at.strftime("%Y-%m-%d %H:%M") if k.last_used_at else "never",
                "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d}",
            )
            for k in found
        ),
    )


@apikeys.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke the active key called NAME: it is refused (401) from now on."""
    from api import keys
    from staff import audit
    from storage import utcnow

    ctx = open_context()
    now = utcnow()
    with ctx.db.begin() as conn:
        gone = keys.revoke(conn, name, now)
        audit.record(conn, None, "apikey.revoke", "apikey", gone.prefix, now)
    echo(f"revoked API key {gone.name} ({gone.prefix}…)")
