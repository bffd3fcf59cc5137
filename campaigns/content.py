"""The catalog every process sends from: the active content versions in the database.

The library folder (``CLINICMAIL_CAMPAIGNS_DIR``, the bundled library by default) is where
content *comes from*: any campaign in it that the database has never seen is imported once, as
live content awaiting a clinician's review here: the ``outbox`` transport (the demo) sends it out
of the box, marked unreviewed; the ``sendgrid`` and ``smtp`` transports hold it until a clinician
of this installation approves it (:mod:`campaigns.review`). After that the database is the truth: edit in the console, or change the folder and run
``clinicmail campaigns import DIR``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from campaigns import versions
from campaigns.loader import (
    Catalog,
    CatalogError,
    Problem,
    load_catalog,
    set_aside,
    with_placeholders,
)
from storage import Database, kvstate, utcnow
from templates import Renderer, check_memory

# The template checks passed by any process, kept for the next (templates.check_memory): a
# command then checks only what changed since, not the whole library. One row, written only when
# a process passed new checks.
CHECKS_KEY = "template_checks"
CHECKS_KEPT = 2000  # passes kept at most (the bundled library with one clinic needs about 60)


@dataclass
class KeptChecks(kvstate.JsonState):
    fingerprint: str = ""  # of the code that made them (templates.check_memory.fingerprint)
    passed: list[str] = field(default_factory=list)


def seed(conn: Connection, library: Path, renderer: Renderer) -> dict[str, list[Problem]]:
    """Import the library's campaigns that the database does not hold yet.

    A new campaign whose files cannot be built is not imported: it is returned (id → problems)
    so the service sets it aside and every other campaign keeps sending; it is imported once
    its files are fixed. Raises :class:`CatalogError` when the library as a whole is unusable.
    """
    known = set(versions.campaign_ids(conn))
    if not library.is_dir():
        return {}
    wanted = sorted(
        p.name
        for p in library.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in known
    )
    if not wanted:
        return {}
    catalog, problems = load_catalog(library, renderer)
    broken: dict[str, list[Problem]] = {}
    if problems:
        split = set_aside(catalog, problems, library)
        if split is None:
            raise CatalogError(problems)
        broken = {cid: found for cid, found in split[1].items() if cid in wanted}
    now = utcnow()
    for campaign_id in wanted:
        if catalog.get(campaign_id) is None or campaign_id in broken:
            continue
        versions.create(
            conn,
            campaign_id,
            versions.folder_files(library / campaign_id),
            state=versions.ACTIVE,
            origin=versions.BUNDLED,
            actor=versions.Actor(None, "library"),
            now=now,
        )
    return broken


def load(
    db: Database, library: Path, renderer: Renderer, *, require_approval: bool = False
) -> tuple[Catalog, str, dict[str, list[Problem]]]:
    """The catalog of active versions (seeding the library first), its generation, and the
    campaigns set aside because they cannot be built with this installation's settings.
    ``require_approval``: live content no clinician here approved is loaded held
    (:func:`campaigns.versions.load_active`).

    A broken campaign stands in as a paused placeholder (:func:`campaigns.loader.set_aside`) so
    every other campaign keeps sending. Before the database is created (``campaigns preview`` on
    a new machine) the folder is read directly, exactly as it would be imported.
    """
    scope = check_memory.clinic_scope(renderer.clinic)
    for attempt in (1, 2):
        try:
            with db.begin() as conn:
                stored = recall_checks(conn, scope)
                unseeded = seed(conn, library, renderer)
                campaigns, broken = versions.load_active(
                    conn, renderer, require_approval=require_approval
                )
                broken.update(unseeded)
                generation = versions.generation(conn)
            break
        except IntegrityError:  # another process seeded at the same moment: read theirs
            if attempt == 2:
                raise
        except (OperationalError, ProgrammingError):  # no tables yet
            catalog, problems = load_catalog(library, renderer)
            if not problems:
                return catalog, "", {}
            split = set_aside(catalog, problems, library)
            if split is None:  # a problem with the library as a whole
                raise CatalogError(problems) from None
            return split[0], "", split[1]
    keep_checks(db, stored, scope)
    return with_placeholders(campaigns, broken), generation, broken


def recall_checks(conn: Connection, scope: str) -> set[str]:
    """Trust the template checks stored by processes running this same code, as the checks of
    the clinic ``scope`` names (the one loading); answers them."""
    stored = _trusted(kvstate.read(conn, CHECKS_KEY))
    check_memory.memory.trust(stored, scope)
    return stored


def keep_checks(db: Database, stored: set[str], scope: str) -> None:
    """Store the passes this process knows for the clinic ``scope`` names that the database
    lacks (``stored`` is what it held: another database this process opened may have checked
    them), beside those stored already (by this code: another fingerprint's are dropped). Best
    effort: the catalog is loaded whether or not this is written."""
    new = check_memory.memory.passes(scope) - stored
    if not new:
        return
    try:
        with db.begin() as conn:
            held = _trusted(kvstate.read_locked(conn, CHECKS_KEY, KeptChecks().dump()))
            passed = sorted(new) + sorted(held - new)
            kept = KeptChecks(check_memory.fingerprint(), passed[:CHECKS_KEPT])
            kvstate.write(conn, CHECKS_KEY, kept.dump())
    except SQLAlchemyError:  # a database this process cannot write: the next one checks again
        pass


def _trusted(raw: str | None) -> set[str]:
    """The passes in a stored row, if this code made them (an unreadable row holds none)."""
    try:
        kept = KeptChecks.load(raw)
    except (ValueError, TypeError, AttributeError):  # not JSON, or not an object
        return set()
    if kept.fingerprint != check_memory.fingerprint() or not isinstance(kept.passed, list):
        return set()
    return {c for c in kept.passed if isinstance(c, str)}


def current_generation(db: Database) -> str:
    try:
        with db.begin() as conn:
            return versions.generation(conn)
    except (OperationalError, ProgrammingError):
        return ""
