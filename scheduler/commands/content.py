"""``clinicmail campaigns import DIR`` and ``campaigns export CAMPAIGN DIR``: campaign folders
are the import/export format of the content versions kept in the database."""

from __future__ import annotations

import json
from pathlib import Path

import click


def register(cli: click.Group) -> None:
    group = cli.commands["campaigns"]
    assert isinstance(group, click.Group)
    group.add_command(import_command)
    group.add_command(export_command)


@click.command("import")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the outcome per campaign as JSON.")
def import_command(directory: Path, as_json: bool) -> None:
    """Import every campaign folder in DIRECTORY as a new content version.

    A folder is imported as a draft for review, or as approved when it carries a valid approval
    record (the approval.json an export writes, unchanged files, reviewed by an active clinician
    account here within CLINICMAIL_REVIEW_INTERVAL). Identical content is skipped. Nothing
    goes live until a clinician approves it and someone activates it in the console. Nothing is
    imported when any folder has a problem.
    """
    from campaigns import versions
    from campaigns.loader import load_catalog
    from scheduler.cli import _context, fail
    from staff import accounts, audit
    from storage import utcnow

    ctx = _context()
    if not directory.is_dir():
        fail(f"{directory} is not a directory")
    catalog, problems = load_catalog(directory, ctx.renderer)
    if problems:
        for p in problems:
            click.echo(str(p), err=True)
        fail(f"{len(problems)} problem(s) in {directory}; nothing was imported")
    _ = ctx.catalog  # the library is seeded first, so imports become newer versions
    now = utcnow()
    outcome: dict[str, str] = {}
    interval = ctx.settings.review_every
    with ctx.db.begin() as conn:
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
    if as_json:
        click.echo(json.dumps(outcome))
        return
    for cid, state in outcome.items():
        click.echo(f"{cid}: {state.replace('_', ' ')}")


@click.command("export")
@click.argument("campaign")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--version", "number", type=int, help="Version number (default: the active one).")
@click.option("--force", is_flag=True, help="Overwrite DIRECTORY/CAMPAIGN if it exists.")
def export_command(campaign: str, directory: Path, number: int | None, force: bool) -> None:
    """Write CAMPAIGN's content to DIRECTORY/CAMPAIGN as a campaign folder (keep it in git,
    edit it, import it back). A clinician's approval travels with it as approval.json."""
    from campaigns import versions
    from scheduler.cli import _context, fail

    ctx = _context()
    _ = ctx.catalog
    with ctx.db.begin() as conn:
        history = versions.versions_of(conn, campaign)
    if not history:
        fail(f"no campaign {campaign!r}")
    if number is not None:
        chosen = next((v for v in history if v.number == number), None)
        if chosen is None:
            fail(f"campaign {campaign!r} has no version {number}")
    else:
        chosen = next((v for v in history if v.state == versions.ACTIVE), history[0])
    target = directory / campaign
    if target.exists() and any(target.iterdir()) and not force:
        fail(f"{target} already exists and is not empty; use --force to overwrite it")
    target.mkdir(parents=True, exist_ok=True)
    files = versions.export_files(chosen)
    for stale in target.iterdir():
        if (
            stale.is_file()
            and stale.name not in files
            and stale.suffix in (".md", ".yaml", ".json")
        ):
            stale.unlink()
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    click.echo(f"exported {campaign} version {chosen.number} ({chosen.state}) to {target}")
