"""The ``clinicmail`` command line. Exit 0 on success, 1 on a user error with one
clear line on stderr, never a traceback (set CLINICMAIL_DEBUG=1 to see one)."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy import select

from campaigns.loader import CatalogError, load_catalog
from scheduler.context import AppContext
from scheduler.settings import Settings, SettingsError, load_settings
from scheduler.terminal import echo
from storage.db import DatabaseError


class UserError(click.ClickException):
    """One line for the user; exit 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        echo(f"clinicmail: {one_line(self.format_message())}", err=True)


def one_line(message: str) -> str:
    """Driver errors can span lines; the user gets exactly one."""
    return " ".join(message.split())


def fail(message: str) -> NoReturn:
    raise UserError(message)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))


_OPEN: list[AppContext] = []


def _context(migrate: bool = True, *, create: bool = False) -> AppContext:
    """The parts, built from the settings. ``migrate``: open the database and bring its schema
    up to date. Only ``init`` passes ``create``: any other command run where no database is
    (another folder, a typo in the URL) says so instead of quietly starting an empty one."""
    ctx = AppContext.from_settings(_settings())
    _OPEN.append(ctx)  # closed by main() whatever happens
    if migrate and not create and not ctx.db.exists():
        fail(
            f"no database at {Path(str(ctx.db.file)).resolve()}; run 'clinicmail init' to create it "
            "(or set CLINICMAIL_DATABASE_URL to the one you use)"
        )
    if migrate:
        try:
            ctx.db.migrate()
        except DatabaseError as exc:
            fail(str(exc))
    return ctx


def _catalog(ctx: AppContext) -> None:
    try:
        _ = ctx.catalog
    except CatalogError as exc:
        fail(
            f"the campaign library has {len(exc.problems)} problem(s); run 'clinicmail campaigns validate' to see them"
        )
    for cid, problems in sorted(ctx.broken.items()):
        echo(
            f"clinicmail: campaign {cid} is set aside (paused) with {len(problems)} problem(s); "
            "run 'clinicmail campaigns validate' to see them",
            err=True,
        )


def _parse_now(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--now must be an ISO 8601 time such as 2026-11-23T09:00:00Z (got {value!r})")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="clinicmail")
def cli() -> None:
    """clinicmail: consent-first educational email for back and neck pain clinics.

    Settings come from CLINICMAIL_* environment variables (and a .env file); see README.md.
    """


@cli.command()
def init() -> None:
    """Create or migrate the database (safe to run again)."""
    ctx = _context(create=True)
    _ = ctx.tokens  # generates and stores the signing key on first run
    _catalog(ctx)  # a new database gets the campaign library as its first content versions
    echo(f"database ready: {ctx.db.url.render_as_string(hide_password=True)}")


# -- subscribers --------------------------------------------------------------------------------
@cli.group()
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

    from scheduler.onboarding import on_confirmed
    from subscribers.importer import Importer, ImportFileError, Rejection, check_file, count_rows

    ctx = _context()
    _catalog(ctx)
    now = datetime.now(UTC)
    try:
        check_file(file)
    except ImportFileError as exc:
        fail(str(exc))
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

    def on_chunk(conn: Any, ids: list[int]) -> None:
        on_confirmed(conn, ctx.catalog, ids, now, staff_email=ctx.settings.staff_email)

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
            summary = Importer(ctx.db, now).run(
                file,
                on_reject=on_reject,
                on_chunk=on_chunk,
                on_progress=lambda n: progress.advance(task, n),
            )
    except ImportFileError as exc:
        fail(str(exc))
    finally:
        if report_fh is not None:
            report_fh.close()
    if as_json:
        echo(json.dumps(summary.as_dict()))
    else:
        d = summary.as_dict()
        echo(
            f"imported {d['imported']}, updated {d['updated']}, unchanged {d['unchanged']}, rejected {d['rejected']}"
        )
        if d["rejected"] and report_path is None:
            echo("rejected rows were not saved; use --report REJECTS.csv to see why", err=True)


# -- campaigns ----------------------------------------------------------------------------------
@cli.group()
def campaigns() -> None:
    """Validate, list and preview campaigns."""


@campaigns.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--strict", is_flag=True, help="Fail on content-gate warnings too (reading grade, length …)."
)
def validate(directory: Path | None, strict: bool) -> None:
    """Check every campaign and template in DIRECTORY (default: the configured library).

    Then the content gate reads every email: phrases a clinic should not send, subjects that
    name a condition, reading grade, length, and the urgent-care section in week 1. Its errors
    fail; its warnings are listed and fail only with --strict. Templates are rendered with this
    installation's settings (clinic name, address …), exactly as they will be when email is sent.
    """
    from campaigns.gate import check_campaign

    ctx = _context(migrate=False)  # the renderer only: the database is not opened
    if directory is None:
        directory = ctx.campaigns_dir
    catalog, problems = load_catalog(directory, ctx.renderer)
    if problems:
        for p in problems:
            echo(str(p), err=True)
        fail(f"{len(problems)} problem(s) in {directory}")
    findings = [f for c in catalog for f in check_campaign(c)]
    for f in findings:
        echo(str(f), err=True)
    blocking = [f for f in findings if strict or f.severity == "error"]
    if blocking:
        fail(f"{len(blocking)} problem(s) in {directory}")
    steps = sum(len(c.steps) for c in catalog)
    warned = f" ({len(findings)} content warning(s))" if findings else ""
    echo(f"ok: {len(catalog)} campaign(s), {steps} step(s) in {directory}{warned}")


@campaigns.command("list")
def list_() -> None:
    """List campaigns with their status and steps."""
    ctx = _context(migrate=False)
    _catalog(ctx)
    for c in ctx.catalog:
        if c.id in ctx.broken:
            echo(f"{c.id}\tbroken\t{len(ctx.broken[c.id])} problem(s)\tset aside")
            continue
        echo(f"{c.id}\t{c.meta.status}\t{len(c.steps)} steps\t{c.meta.name}")


@campaigns.command()
@click.argument("campaign")
@click.argument("step")
@click.option(
    "--symptoms", default="", help="Comma-separated symptom codes, e.g. lower_back,sciatica."
)
@click.option(
    "--format", "fmt", type=click.Choice(["html", "text"]), default="text", show_default=True
)
@click.option(
    "--first-name", default=None, help="Preview with this first name (default: the fallback)."
)
def preview(campaign: str, step: str, symptoms: str, fmt: str, first_name: str | None) -> None:
    """Show STEP of CAMPAIGN as a subscriber with --symptoms would get it.

    STEP is a step id (e.g. why-your-back-locks-up) or its number (e.g. 1).
    """
    from campaigns.rendering import render_variant
    from subscribers.segments import Facts
    from subscribers.symptoms import unknown_codes
    from templates import fill

    ctx = _context(migrate=False)
    _catalog(ctx)
    camp = ctx.catalog.get(campaign)
    if camp is None:
        fail(f"no campaign {campaign!r}; known: {', '.join(ctx.catalog.campaigns) or 'none'}")
    chosen = next(
        (s for s in camp.steps if s.id == step or (step.isdigit() and s.number == int(step))), None
    )
    if chosen is None:
        fail(
            f"campaign {campaign!r} has no step {step!r}; steps: {', '.join(s.id for s in camp.steps)}"
        )
    codes = frozenset(c.strip() for c in symptoms.split(",") if c.strip())
    bad = unknown_codes(codes)
    if bad:
        fail(f"unknown symptom code: {', '.join(bad)}")
    variant = chosen.variant_for(Facts(symptoms=codes))
    rendered = render_variant(ctx.renderer, camp, variant)
    base = ctx.settings.base_url
    subject, html_part, text_part = fill(
        rendered,
        {
            "first_name": first_name or "there",
            "unsubscribe_url": f"{base}/unsubscribe/PREVIEW",
            "preferences_url": f"{base}/preferences/PREVIEW",
            "checkin_url": f"{base}/checkin/PREVIEW",
        },
    )
    if fmt == "html":
        echo(html_part)
    else:
        echo(f"Subject: {subject}\nVariant: {variant.id}\n\n{text_part}")


# -- the tick and the service -------------------------------------------------------------------
@cli.command()
@click.option(
    "--now", "now_text", metavar="ISO8601", help="Act as if it were this time (default: now)."
)
@click.option("--dry-run", is_flag=True, help="Show what would happen; change and send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def tick(now_text: str | None, dry_run: bool, as_json: bool) -> None:
    """Run one planning-and-sending pass."""
    from scheduler.tick import run_tick

    now = _parse_now(now_text)
    ctx = _context()
    _catalog(ctx)
    report = run_tick(ctx, now, dry_run=dry_run)
    data = report.as_dict()
    if as_json:
        echo(json.dumps(data))
    elif dry_run:
        echo(
            f"dry run at {data['now']}: would plan {data['planned']}, would send {data['would_send']}"
        )
    else:
        echo(
            f"tick at {data['now']}: planned {data['planned']}, sent {data['sent']}, failed {data['failed']}, "
            f"retrying {data['retried']}, unknown {data['unknown']}, cancelled {data['cancelled']}"
        )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--no-scheduler", is_flag=True, help="Serve HTTP only (another process runs the scheduler)."
)
@click.option("--scheduler-only", is_flag=True, help="Run the scheduler only, no HTTP.")
def serve(host: str, port: int, no_scheduler: bool, scheduler_only: bool) -> None:
    """Run the HTTP app and the scheduler in one process."""
    from scheduler.logs import configure as configure_logging
    from scheduler.service import port_problem, run_scheduler_only
    from scheduler.service import serve as run_serve

    if no_scheduler and scheduler_only:
        fail("--no-scheduler and --scheduler-only cannot be used together")
    busy = None if scheduler_only else port_problem(host, port)
    if busy:
        fail(busy)
    ctx = _context()
    configure_logging(ctx.settings.log_format, ctx.settings.log_level)
    _catalog(ctx)
    _ = ctx.tokens
    if scheduler_only:
        run_scheduler_only(ctx)
    else:
        # a log line, not a bare echo: with CLINICMAIL_LOG_FORMAT=json every line is JSON
        logging.getLogger("clinicmail.service").info(
            "clinicmail on http://%s:%d (transport: %s)", host, port, ctx.settings.transport
        )
        run_serve(ctx, host, port, scheduler=not no_scheduler)


# -- outbox ---------------------------------------------------------------------------------------
@cli.group()
def outbox() -> None:
    """Read messages stored by the outbox transport."""


@outbox.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def outbox_list(limit: int, as_json: bool) -> None:
    """The newest stored messages."""
    from scheduler.tables import outbox as table

    ctx = _context()
    with ctx.db.begin() as conn:
        rows = conn.execute(
            select(
                table.c.id, table.c.send_id, table.c.recipient, table.c.subject, table.c.created_at
            )
            .order_by(table.c.id.desc())
            .limit(limit)
        ).all()
    if as_json:
        echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "send_id": r.send_id,
                        "to": r.recipient,
                        "subject": r.subject,
                        "created_at": r.created_at.isoformat(),
                    }
                    for r in rows
                ]
            )
        )
        return
    for r in rows:
        echo(f"{r.id}\t{r.created_at:%Y-%m-%d %H:%M}\t{r.recipient}\t{r.subject}")


@outbox.command("show")
@click.argument("message_id", type=int)
@click.option("--raw", is_flag=True, help="Print the full MIME message.")
def outbox_show(message_id: int, raw: bool) -> None:
    """One stored message (its text part, or --raw for the MIME source)."""
    from scheduler.tables import outbox as table

    ctx = _context()
    with ctx.db.begin() as conn:
        data = conn.execute(
            select(table.c.message).where(table.c.id == message_id)
        ).scalar_one_or_none()
    if data is None:
        fail(f"no outbox message {message_id}")
    if raw:
        echo(bytes(data).decode("utf-8", "replace"))
        return
    msg = message_from_bytes(bytes(data))
    for name in ("From", "To", "Subject", "List-Unsubscribe"):
        if msg[name] is not None:  # transactional email has no List-Unsubscribe
            echo(f"{name}: {msg[name]}")
    echo()
    text = _text_part(msg)
    echo(text)


def _text_part(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def _register_commands() -> None:
    import importlib

    from scheduler.commands import MODULES

    for name in MODULES:
        importlib.import_module(f"scheduler.commands.{name}").register(cli)


_register_commands()


def main() -> None:
    """Console entry point: never a traceback for the user."""
    try:
        _main()
    finally:
        while _OPEN:
            _OPEN.pop().close()


def _main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        echo("clinicmail: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if isinstance(exc, UserError) else 1)
    except (SettingsError, DatabaseError, CatalogError) as exc:
        echo(f"clinicmail: {one_line(str(exc))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("CLINICMAIL_DEBUG"):
            raise
        echo(
            f"clinicmail: unexpected error ({type(exc).__name__}); set CLINICMAIL_DEBUG=1 for details",
            err=True,
        )
        sys.exit(1)
