"""``clinicmail init``, ``tick`` and ``serve``: the database, one pass, the long-running service."""

from __future__ import annotations

import logging

import click

from app.cli.context import check_catalog, open_context
from app.cli.errors import fail
from app.cli.options import parse_now
from app.cli.output import echo, echo_json


@click.command()
@click.option(
    "--no-backup",
    is_flag=True,
    help="When upgrading, do not back the database up before changing its schema.",
)
def init(no_backup: bool) -> None:
    """Create the database, or upgrade it as 'clinicmail upgrade' does (safe to run again)."""
    from app.maintenance import upgrade

    ctx = open_context(migrate=False, any_schema=True)
    done = upgrade(ctx.db, make_backup=not no_backup)
    _ = ctx.tokens  # generates and stores the signing key on first run
    check_catalog(ctx)  # a new database gets the campaign library as its first content versions
    if done.before.status == "older":
        echo(done.describe())
    echo(f"database ready: {ctx.db.url.render_as_string(hide_password=True)}")
    from app.approvals import gate_notice

    notice = gate_notice(ctx)  # the library arrives awaiting a clinician's approval
    if notice is not None:
        echo(notice)


@click.command()
@click.option(
    "--now", "now_text", metavar="ISO8601", help="Act as if it were this time (default: now)."
)
@click.option("--dry-run", is_flag=True, help="Show what would happen; change and send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def tick(now_text: str | None, dry_run: bool, as_json: bool) -> None:
    """Run one planning-and-sending pass.

    Exits 1 with one line saying what to fix when the provider refuses the account or
    configuration (a bad API key, an unverified sender, SMTP login or TLS refused): no email is
    marked failed for it, and everything waiting goes out once it is fixed."""
    from scheduler.tick import run_tick

    now = parse_now(now_text)
    ctx = open_context()
    check_catalog(ctx)
    report = run_tick(ctx, now, dry_run=dry_run)
    data = report.as_dict()
    if as_json:
        echo_json(data)
    elif dry_run:
        echo(
            f"dry run at {data['now']}: would plan {data['planned']}, would send {data['would_send']}"
        )
    else:
        echo(
            f"tick at {data['now']}: planned {data['planned']}, sent {data['sent']}, failed {data['failed']}, "
            f"retrying {data['retried']}, unknown {data['unknown']}, cancelled {data['cancelled']}"
        )
    if data.get("paused"):
        # The provider refuses the account or configuration: nothing was marked failed, and
        # the exit code tells cron and CI that someone must act.
        fail(f"sending is paused: {data['paused']}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--no-scheduler", is_flag=True, help="Serve HTTP only (another process runs the scheduler)."
)
@click.option("--scheduler-only", is_flag=True, help="Run the scheduler only, no HTTP.")
def serve(host: str, port: int, no_scheduler: bool, scheduler_only: bool) -> None:
    """Run the HTTP app and the scheduler in one process."""
    from app.logs import configure as configure_logging
    from app.service import base_url_problem, port_problem, run_scheduler_only
    from app.service import serve as run_serve

    if no_scheduler and scheduler_only:
        fail("--no-scheduler and --scheduler-only cannot be used together")
    busy = None if scheduler_only else port_problem(host, port)
    if busy:
        fail(busy)
    ctx = open_context()
    configure_logging(ctx.settings.log_format, ctx.settings.log_level)
    check_catalog(ctx)
    _ = ctx.tokens
    if scheduler_only:
        run_scheduler_only(ctx)
    else:
        # a log line, not a bare echo: with CLINICMAIL_LOG_FORMAT=json every line is JSON
        log = logging.getLogger("clinicmail.service")
        mismatch = base_url_problem(ctx.settings.base_url, host, port)
        if mismatch:
            log.warning("%s", mismatch)
        log.info("clinicmail on http://%s:%d (transport: %s)", host, port, ctx.settings.transport)
        run_serve(ctx, host, port, scheduler=not no_scheduler)
