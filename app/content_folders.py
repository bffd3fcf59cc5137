"""Campaign folders as the import and export format of the content versions kept in the
database (``clinicmail campaigns import DIR`` and ``campaigns export CAMPAIGN DIR``).

A folder never carries an approval: whatever it holds (an ``approval.json`` from an older
export, say), an imported folder arrives as a new version *in review*, waiting for a clinician
of this installation (``clinicmail campaigns approve`` or the console's review screen).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from campaigns import versions
from campaigns.loader import Catalog
from staff import audit
from storage import Database


def import_folders(
    db: Database, catalog: Catalog, directory: Path, now: datetime
) -> dict[str, str]:
    """Store each campaign of ``catalog`` (read from ``directory``) as a new content version in
    review, unless identical content is already stored. Returns each campaign's resulting state
    (``unchanged`` or ``in_review``); every version made is audited with the actor "cli"."""
    outcome: dict[str, str] = {}
    with db.begin() as conn:
        for campaign in catalog:
            folder = directory / campaign.id
            files = versions.folder_files(folder)
            digest = versions.files_digest(files)
            history = versions.versions_of(conn, campaign.id)
            if any(v.files_sha256 == digest for v in history):
                outcome[campaign.id] = "unchanged"
                continue
            made = versions.create(
                conn,
                campaign.id,
                files,
                state=versions.IN_REVIEW,
                origin=versions.IMPORTED,
                actor=versions.CLI,
                now=now,
                based_on=next((v.id for v in history if v.state == versions.ACTIVE), None),
                submitted=True,
            )
            outcome[campaign.id] = made.state
            audit.record(
                conn,
                None,
                "content.import",
                "campaign_version",
                made.id,
                now,
                {"campaign": campaign.id, "number": made.number, "state": made.state},
            )
    return outcome


def version_to_export(
    history: list[versions.Version], number: int | None
) -> versions.Version | None:
    """Version ``number`` of ``history``, or by default the active one (else the newest)."""
    if number is not None:
        return next((v for v in history if v.number == number), None)
    return next((v for v in history if v.state == versions.ACTIVE), history[0])


def write_folder(version: versions.Version, target: Path) -> None:
    """Write ``version`` as a campaign folder at ``target``, removing step and data files of an
    earlier export that this version no longer has."""
    target.mkdir(parents=True, exist_ok=True)
    files = versions.export_files(version)
    for stale in target.iterdir():
        if (
            stale.is_file()
            and stale.name not in files
            and stale.suffix in (".md", ".yaml", ".json")
        ):
            stale.unlink()
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
