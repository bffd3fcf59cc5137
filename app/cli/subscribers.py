"""``clinicmail subscribers import|export|erase``: people in, data portability, erasure."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from app.cli.context import check_catalog, open_context
from app.cli.errors import fail
from app.cli.output import echo, echo_json


@click.group()
def subscribers() -> None:
    """Import, export and erase subscribers."""


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write rejected rows here as CSV (line, email, reason).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def import_(file: Path, report_path: Path | None, as_json: bool) -> None:
    """Import subscribers from a UTF-8 CSV file.

    Columns: email (required), first_name, symptoms (codes separated by ;), timezone (IANA),
    consent (yes/true/1 required), consent_at (ISO 8601), source. Bad rows are rejected with
    their reason; the rest import. Re-importing the same file changes nothing.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from app.importing import import_file
    from subscribers.importer import Rejection, check_file, count_rows

    ctx = open_context()
    check_catalog(ctx)
    now = datetime.now(UTC)
    check_file(file)
    report_fh = None
    writer = None
    if report_path is not None:
        try:
            report_fh = report_path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            fail(f"cannot write the report {report_path}: {exc.strerror}")
        writer = csv.writer(report_fh)
        writer.writerow(["line", "email", "reason"])

    def on_reject(r: Rejection) -> None:
        if writer is not None:
            writer.writerow(r.cells())

    show_progress = sys.stderr.isatty() and not as_json
    total = count_rows(file) if show_progress else None
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not show_progress,
        transient=True,
    )
    try:
        with progress:
            task = progress.add_task("import", total=total)
            summary = import_file(
                ctx, file, now, on_reject=on_reject, on_progress=lambda n: progress.advance(task, n)
            )
    finally:
        if report_fh is not None:
            report_fh.close()
    d = summary.as_dict()
    if as_json:
        echo_json(d)
    else:
        echo(
            f"imported {d['imported']}, updated {d['updated']}, unchanged {d['unchanged']}, rejected {d['rejected']}"
        )
        if d["rejected"] and report_path is None:
            echo("rejected rows were not saved; use --report REJECTS.csv to see why", err=True)


@subscribers.command("export")
@click.argument("email")
def export(email: str) -> None:
    """Print everything held about the person with EMAIL as JSON (data portability).

    Profile, symptoms with their labels, the consent ledger, opens, clicks and check-in
    answers, enrollments, the send ledger, stored provider events with their raw payloads
    (IP address, user agent, clicked URL), the sunset state, stored messages and
    suppression status.
    """
    from app.privacy import audit_from_cli, export_json

    db = open_context().db
    if audit_from_cli(db, email, "subscriber.export", datetime.now(UTC)) is None:
        fail("no subscriber with that address")
    text = export_json(db, email)
    if text is None:
        fail("no subscriber with that address")
    echo(text)


@subscribers.command("erase")
@click.argument("email")
def erase(email: str) -> None:
    """Erase the person with EMAIL: profile, symptoms, consent records, sends, stored
    messages, enrollments and provider events. Only a one-way hash of the address stays, on the suppression
    list, so a later import or signup cannot add them back. Safe to run twice."""
    from app.privacy import audit_from_cli, erase_everywhere

    db = open_context().db
    now = datetime.now(UTC)
    # Written before the erasure (which cannot remove it: the log is append-only) and naming
    # only the opaque id, as the console's entry does.
    audit_from_cli(db, email, "subscriber.erase", now)
    result, final = erase_everywhere(db, email, now)
    if result.found:
        echo("erased; only a one-way hash of the address remains, on the suppression list")
    elif result.already_suppressed:
        echo("nothing held for that address; its hash was already on the suppression list")
    else:
        echo(
            "nothing held for that address; its hash is now on the suppression list "
            "so it cannot be added again"
        )
    if not final:
        echo(
            "not yet final on disk: another process is reading the database, so old copies "
            "stay in its write-ahead log until it finishes; housekeeping completes the "
            "erasure then (or run this command again)",
            err=True,
        )
