"""What a command works with: the parts built from the settings (:class:`AppContext`).

Every context a command opens is closed by :func:`close_all` when the command ends, whatever
happened (``main`` calls it).
"""

from __future__ import annotations

from pathlib import Path

from app.cli.errors import fail
from app.cli.output import echo
from app.context import AppContext
from app.settings import load_settings
from campaigns.loader import CatalogError
from storage.db import SCHEMA_REVISIONS

_OPEN: list[AppContext] = []


def open_context(
    migrate: bool = True, *, create: bool = False, any_schema: bool = False
) -> AppContext:
    """The parts, built from the settings. ``migrate``: open the database (the parameter keeps
    its old name). Only ``init`` passes ``create``, which creates or upgrades the schema: any
    other command run where no database is (another folder, a typo in the URL) says so instead
    of quietly starting an empty one, and on a schema that is not this version's it stops with
    one line naming ``clinicmail upgrade`` (or the version it needs): nothing migrates silently.
    Without ``migrate`` the database is not opened, but one that is there with another schema is
    refused all the same, unless ``any_schema`` (``init``, ``upgrade``, ``backup``, ``restore``)."""
    ctx = AppContext.from_settings(load_settings())
    _OPEN.append(ctx)
    if migrate and not create and not ctx.db.exists():
        fail(
            f"no database at {Path(str(ctx.db.file)).resolve()}; run 'clinicmail init' to create it "
            "(or set CLINICMAIL_DATABASE_URL to the one you use)"
        )
    if migrate and create:
        ctx.db.migrate()
    elif migrate:
        ctx.db.open()
    if migrate:
        ctx.refresh_settings()  # what staff saved in the console wins over the environment
    elif not any_schema and ctx.db.exists():
        found = ctx.db.schema_revisions()
        if found and found != SCHEMA_REVISIONS:
            ctx.db.open()  # says which: older (upgrade) or newer (the version it needs)
        elif found:  # this version's database: its saved clinic settings apply here too
            ctx.refresh_settings()
    return ctx


def check_catalog(ctx: AppContext) -> None:
    """Stop when the campaign library cannot be read at all; warn about campaigns set aside."""
    try:
        _ = ctx.catalog
    except CatalogError as exc:
        fail(
            f"the campaign library has {len(exc.problems)} problem(s); run 'clinicmail campaigns validate' to see them"
        )
    if len(ctx.catalog) == 0:
        echo(
            f"clinicmail: no campaigns: the campaigns folder {ctx.campaigns_dir} holds none and "
            "the database has none, so no campaign email will be sent "
            "(check CLINICMAIL_CAMPAIGNS_DIR)",
            err=True,
        )
    for cid, problems in sorted(ctx.broken.items()):
        echo(
            f"clinicmail: campaign {cid} is set aside (paused) with {len(problems)} problem(s); "
            "run 'clinicmail campaigns validate' to see them",
            err=True,
        )


def close_all() -> None:
    """Close every context the command opened."""
    while _OPEN:
        _OPEN.pop().close()
