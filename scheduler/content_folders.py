"""Campaign folders as the import and export format of the content versions kept in the
database (``clinicmail campaigns import DIR`` and ``campaigns export CAMPAIGN DIR``).

An imported folder becomes a draft for review, or an approved version when it carries a valid
approval record: the ``approval.json`` an export writes, over unchanged files, by a clinician
account that is active here, within the review interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from campaigns import versions
from campaigns.loader import Catalog
from staff import accounts, audit
from storage import Database


def import_folders(
    db: Database, catalog: Catalog, directory: Path, interval: timedelta, now: datetime
) -> dict[str, str]:
    """Store each campaign of ``catalog`` (read from ``directory``) as a new content version
    unless identical content is already stored. Returns each campaign's resulting state
    (``unchanged``, ``draft``, ``approved`` …); every version made is audited with the actor "cli"."""
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
            review = None
            approval = versions.read_approval(folder)
            if approval is not None and approval.files_sha256 == digest:
                reviewer = accounts.find(conn, approval.reviewed_by)
                at = approval.reviewed_at
                if (
                    reviewer is not None
                    and reviewer.active
                    and reviewer.role == "clinician"
                    and at.tzinfo is not None
                    and at <= now < at + interval
                ):
                    actor = versions.Actor(reviewer.id, reviewer.email, reviewer.role)
                    review = (actor, at, approval.note, interval)
            made = versions.create(
                conn,
                campaign.id,
                files,
                state=versions.APPROVED if review else versions.DRAFT,
                origin=versions.IMPORTED,
                actor=versions.CLI,
                now=now,
                review=review,
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
