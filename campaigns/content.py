"""The catalog every process sends from: the active content versions in the database.

The library folder (``CLINICMAIL_CAMPAIGNS_DIR``, the bundled library by default) is where
content *comes from*: any campaign in it that the database has never seen is imported once, as
active but not yet reviewed by a clinician at this clinic, so a new installation sends out of the
box. After that the database is the truth: edit in the console, or change the folder and run
``clinicmail campaigns import DIR``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from campaigns import versions
from campaigns.loader import Catalog, CatalogError, load_catalog
from storage import Database, utcnow
from templates import Renderer


def seed(conn: Connection, library: Path, renderer: Renderer) -> list[str]:
    """Import the library's campaigns that the database does not hold yet; return their ids.

    Raises :class:`CatalogError` when the library has problems and something needs importing.
    """
    known = set(versions.campaign_ids(conn))
    if not library.is_dir():
        return []
    wanted = sorted(
        p.name
        for p in library.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in known
    )
    if not wanted:
        return []
    catalog, problems = load_catalog(library, renderer)
    if problems:
        raise CatalogError(problems)
    now = utcnow()
    for campaign_id in wanted:
        campaign = catalog.get(campaign_id)
        if campaign is None:
            continue
        files = versions.folder_files(library / campaign_id)
        versions.prime(campaign_id, files, campaign)  # just parsed: do not parse it again
        versions.create(
            conn,
            campaign_id,
            files,
            state=versions.ACTIVE,
            origin=versions.BUNDLED,
            actor=versions.Actor(None, "library"),
            now=now,
        )
    return wanted


def load(db: Database, library: Path, renderer: Renderer) -> tuple[Catalog, str]:
    """The catalog of active versions (seeding the library first) and its generation.

    Before the database is created (``campaigns preview`` on a new machine) the folder is read
    directly, exactly as it would be imported.
    """
    for attempt in (1, 2):
        try:
            with db.begin() as conn:
                seed(conn, library, renderer)
                campaigns, problems = versions.load_active(conn, renderer)
                generation = versions.generation(conn)
            break
        except IntegrityError:  # another process seeded at the same moment: read theirs
            if attempt == 2:
                raise
        except (OperationalError, ProgrammingError):  # no tables yet
            catalog, problems = load_catalog(library, renderer)
            if problems:
                raise CatalogError(problems) from None
            return catalog, ""
    if problems:
        raise CatalogError(problems)
    return Catalog(campaigns), generation


def current_generation(db: Database) -> str:
    try:
        with db.begin() as conn:
            return versions.generation(conn)
    except (OperationalError, ProgrammingError):
        return ""
