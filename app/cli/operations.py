"""``clinicmail upgrade``, ``backup``, ``restore`` and ``keys``: keeping an installation.

What they call is :mod:`app.maintenance` (the upgrade and its backup), :mod:`storage.backup`
(the archive) and :mod:`storage.keys` (the key file); docs/operations.md is the runbook.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from app.cli.context import open_context
from app.cli.errors import fail
from app.cli.output import echo, echo_json
from app.maintenance import upgrade as run_upgrade
from storage.backup import backup as make_backup
from storage.backup import restore as run_restore
from storage.keys import rotate as rotate_key


@click.command()
@click.option(
    "--no-backup", is_flag=True, help="Do not back the database up before changing its schema."
)
def upgrade(no_backup: bool) -> None:
    """Migrate the database to this version's schema (a backup first)."""
    ctx = open_context(migrate=False, any_schema=True)
    if not ctx.db.exists():
        fail(
            f"no database at {Path(str(ctx.db.file)).resolve()}; run 'clinicmail init' to create it"
        )
    done = run_upgrade(ctx.db, make_backup=not no_backup)
    echo(done.describe())


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Write one archive with the database, the key file and a manifest."""
    ctx = open_context(migrate=False, any_schema=True)
    if not ctx.db.exists():
        fail(f"no database at {Path(str(ctx.db.file)).resolve()}; nothing to back up")
    manifest = make_backup(ctx.db, file)
    echo(
        f"backed up schema {'+'.join(manifest.schema_revisions)} ({manifest.backend}) "
        f"and the key file to {file.expanduser().absolute()}"
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that holds data.")
def restore(file: Path, force: bool) -> None:
    """Put the database and the key file from a backup archive back in place."""
    ctx = open_context(migrate=False, any_schema=True)
    manifest = run_restore(ctx.db, file, force=force)
    state = ctx.db.schema_state()
    then = (
        "; run 'clinicmail upgrade' to bring its schema up to this version"
        if state.status == "older"
        else ""
    )
    echo(
        f"restored the database (schema {state.describe()}) and the key file from the backup "
        f"made {manifest.created_at} by clinicmail {manifest.version}{then}"
    )


@click.group()
def keys() -> None:
    """The link-signing keys in the installation's key file."""


def _env_keys_note() -> str:
    return (
        "CLINICMAIL_SECRET_KEY is set, so links are signed with it, not with the key file: "
        "append the new key to it (comma-separated, newest last), or unset it to use "
        "'clinicmail keys rotate'"
    )


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key for new links; older keys keep verifying links already sent."""
    ctx = open_context()
    if ctx.settings.secret_key is not None:
        fail(_env_keys_note())
    if ctx.db.key_file is None:
        fail("an in-memory database has no key file to rotate")
    new = rotate_key(ctx.db.key_file)
    echo(
        f"new signing key {new.id} signs new links from now on; older keys still verify links "
        "already sent. Restart the running web and scheduler processes so they use it."
    )


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys' ids and ages as JSON.")
def keys_list(as_json: bool) -> None:
    """Show the signing keys' ids and ages (never the keys)."""
    ctx = open_context()
    now = datetime.now(UTC)
    found = ctx.db.keys().signing_keys
    rows = [
        {
            "id": k.id,
            "created_at": k.created.isoformat(timespec="seconds") if k.created else None,
            "age_days": (now - k.created).days if k.created else None,
            "signs_new_links": i == len(found) - 1,
        }
        for i, k in enumerate(found)
    ]
    if as_json:
        echo_json({"keys": rows, "from_environment": ctx.settings.secret_key is not None})
        return
    if ctx.settings.secret_key is not None:
        echo(f"note: {_env_keys_note()}", err=True)
    for row in rows:
        age = f"{row['age_days']} days old" if row["age_days"] is not None else "age unknown"
        role = "signs new links" if row["signs_new_links"] else "verifies older links"
        echo(f"{row['id']}  {row['created_at'] or '-':25}  {age:16}  {role}")
