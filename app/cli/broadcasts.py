"""``clinicmail campaigns broadcast|broadcasts|cancel-broadcast``: one-off emails (newsletters)
to a segment at a local time. Planning and its rules are in :mod:`app.broadcasting`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from app.cli.context import check_catalog, open_context
from app.cli.errors import fail
from app.cli.options import parse_at, parse_segment
from app.cli.output import echo, echo_json


@click.command("broadcast")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--at",
    "at_text",
    required=True,
    metavar="'YYYY-MM-DD HH:MM'",
    help="Local wall time: each subscriber gets it at this time in their own zone "
    "(the clinic's zone when they gave none).",
)
@click.option(
    "--segment",
    default=None,
    metavar="RULE|@FILE",
    help="Who gets it: a segment rule in YAML or JSON, e.g. '{has_any: [sciatica]}', or @rule.yaml."
    " Default: every confirmed subscriber.",
)
@click.option(
    "--id", "slug", default=None, help="The broadcast's id (default: from the file name)."
)
@click.option(
    "--time-sensitive",
    is_flag=True,
    help="Goes at its time even to people emailed in the last seven days (a closure, a changed "
    "number); it still counts toward the weekly cap.",
)
@click.option("--dry-run", is_flag=True, help="Count who would get it and when; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def broadcast(
    file: Path,
    at_text: str,
    segment: str | None,
    slug: str | None,
    time_sensitive: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Schedule a one-off email (a newsletter) from FILE to a segment at a local time, once a
    clinician approved its text.

    The first run puts FILE's text in the review queue as a newsletter (id: --id or the file
    name) and schedules nothing; a clinician approves it in the console or with 'clinicmail
    campaigns approve broadcast.ID --as EMAIL'; running the command again with the same text
    schedules it. Changed text goes back to review under a new --id.

    FILE is Markdown written like a campaign step (front matter: subject, preheader, optional
    cta, review and variants). Only confirmed subscribers who are not suppressed, not pausing
    and have no red-flag symptom get it. It respects the send window and the one-email-in-seven-
    days cap (someone emailed recently gets it when the cap allows), and counts toward the cap;
    --time-sensitive sends it at its time whatever the cap says (it still counts).
    Running the same command again adds people who joined the segment since, and nobody twice.
    """
    from app.broadcasting import (
        BroadcastRefused,
        BroadcastRequest,
        mark_scheduled,
        schedule,
        submit_for_review,
    )
    from campaigns import broadcasts as bc

    local_at = parse_at(at_text)
    segment_data, rule = parse_segment(segment)
    slug = slug if slug is not None else bc.slug_from(file.stem)
    ctx = open_context()
    check_catalog(ctx)
    sources, problems = bc.read_sources(file)
    request = BroadcastRequest(
        slug=slug,
        source_name=file.name,
        sources=sources,
        folder=str(file.parent) if str(file.parent) != "." else "",
        segment=segment_data,
        rule=rule,
        local_at=local_at,
        label=str(file),
        time_sensitive=time_sensitive,
        problems=[str(p) for p in problems],
    )
    now = datetime.now(UTC)
    try:
        if not dry_run and not _approved(ctx, slug, sources):
            plan = schedule(ctx, request, dry_run=True, now=now)  # checks it, changes nothing
            letter = submit_for_review(ctx, request, now)
            if as_json:
                echo_json({"id": slug, "state": letter.state, "recipients": plan["recipients"]})
                return
            echo(
                f"{slug!r} is waiting for a clinician's review (newsletter {slug}); nothing is "
                "scheduled until it is approved in the console or with 'clinicmail campaigns "
                f"approve broadcast.{slug} --as EMAIL'. Then run this command again."
            )
            return
        result = schedule(ctx, request, dry_run=dry_run, now=now)
    except BroadcastRefused as exc:
        for line in exc.details:
            echo(line, err=True)
        fail(str(exc))
    if not dry_run:
        mark_scheduled(ctx, slug, now, result["recipients"])
    plan_capped = result["waiting_for_frequency_cap"]
    plan_closed = result["moved_to_open_time"]
    zones = result["zones"]
    excluded = result["excluded"]
    existing = result["already_scheduled"]
    added = result["added"]
    if as_json:
        echo_json(result)
        return
    verb = "would send" if dry_run else "scheduled"
    head = (
        f"{verb} {slug!r} to {result['recipients']} subscriber(s) at "
        f"{local_at:%Y-%m-%d %H:%M} local"
    )
    if existing and not dry_run:
        head = f"{slug!r} was already scheduled; added {added} new subscriber(s)"
    echo(head)
    for z in zones:
        echo(f"  {z['count']:>6}  {z['zone']:<24} {z['local']} local = {z['utc']}")
    if plan_capped:
        echo(
            f"  {plan_capped} had a campaign email in the last 7 days and get it when the cap "
            f"allows (the last by {result['cap_until']})"
        )
    if result["waiting_for_email_in_flight"]:
        echo(
            f"  {result['waiting_for_email_in_flight']} have an earlier campaign email not yet "
            "accepted by the provider and get this one seven days after it is"
        )
    if plan_closed:
        echo(f"  {plan_closed} fall on a closed day or hour and go at the next open time")
    if time_sensitive:
        echo(
            "  time-sensitive: goes at its time even to people emailed in the last seven days; "
            "their next series email waits seven days from it"
        )
    skipped = excluded["red_flag"] + excluded["suppressed"] + excluded["paused"]
    if skipped:
        echo(
            f"  left out: {excluded['red_flag']} with a red-flag symptom, {excluded['suppressed']} "
            f"suppressed, {excluded['paused']} pausing email"
        )


def _approved(ctx: object, slug: str, sources: dict[str, str]) -> bool:
    from app.broadcasting import approved_newsletter
    from app.context import AppContext

    assert isinstance(ctx, AppContext)
    with ctx.db.begin() as conn:
        return approved_newsletter(conn, slug, sources) is not None


@click.command("broadcasts")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def broadcasts(as_json: bool) -> None:
    """List broadcasts with their progress (waiting, sent, failed, skipped)."""
    from app.broadcasting import overview

    rows = overview(open_context().db)
    if as_json:
        echo_json(rows, ensure_ascii=False)
        return
    if not rows:
        echo("no broadcasts; schedule one with 'clinicmail campaigns broadcast FILE --at …'")
        return
    for r in rows:
        echo(
            f"{r['id']}\t{r['state']}\t{r['local_at']} local\taudience {r['audience']}\t"
            f"waiting {r['waiting']}\tsent {r['sent']}\tfailed {r['failed']}\t"
            f"skipped {r['skipped']}\t{r['subject']}"
        )


@click.command("cancel-broadcast")
@click.argument("broadcast_id")
def cancel_broadcast(broadcast_id: str) -> None:
    """Cancel a broadcast: nobody still waiting gets it (sent emails cannot be recalled)."""
    from app.broadcasting import cancel

    slug = broadcast_id.removeprefix("broadcast.")
    done = cancel(open_context().db, slug, datetime.now(UTC))
    if done.already:
        echo(f"{slug!r} was already cancelled")
        return
    echo(f"cancelled {slug!r}: {done.not_sent} not yet sent will not be; {done.sent} already sent")
