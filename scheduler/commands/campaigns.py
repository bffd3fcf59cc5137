"""``clinicmail campaigns journey`` (the week-by-week emails a person with given symptoms gets,
with simulated engagement) and the one-off broadcasts: ``broadcast``, ``broadcasts``,
``cancel-broadcast``.

(``validate``, ``list`` and ``preview`` live in scheduler/cli.py.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from scheduler.terminal import echo
from subscribers.segments import EVERYONE, Rule

JOURNEY_REASONS = {
    "red_flag": (
        "no journey: a subscriber with a red-flag symptom is never enrolled in an educational "
        "series; they get one safety email at once and clinic staff are alerted"
    ),
    "audience": "no journey: these symptoms are outside the campaign's audience rule",
}


def register(cli: click.Group) -> None:
    group = cli.commands["campaigns"]
    assert isinstance(group, click.Group)
    group.add_command(journey_command)
    group.add_command(broadcast_command)
    group.add_command(broadcasts_command)
    group.add_command(cancel_broadcast_command)


@click.command("journey")
@click.argument("campaign")
@click.option(
    "--symptoms",
    required=True,
    help="Comma-separated symptom codes, e.g. lower_back,sciatica.",
)
@click.option(
    "--first-name", default=None, help="Show subjects with this first name (default: fallback)."
)
@click.option(
    "--clicked",
    multiple=True,
    metavar="STEP",
    help="Simulate a click on a link in this step's email (a step id, or CAMPAIGN/STEP for "
    "another campaign); repeat for more. It counts from when that email is sent.",
)
@click.option("--opened", multiple=True, metavar="STEP", help="Simulate opening this step's email.")
@click.option(
    "--checkin",
    type=click.Choice(["better", "same", "worse"]),
    default=None,
    help='Simulate the latest check-in answer ("How is your back this week?").',
)
@click.option("--json", "as_json", is_flag=True, help="Print the journey as JSON.")
def journey_command(
    campaign: str,
    symptoms: str,
    first_name: str | None,
    clicked: tuple[str, ...],
    opened: tuple[str, ...],
    checkin: str | None,
    as_json: bool,
) -> None:
    """Show the emails, week by week, that a subscriber with --symptoms would receive.

    Honours each step's `when` rule, its variants, delay_days and the one-email-in-seven-days
    cap. Week 1 starts when the subscriber confirms. --clicked, --opened and --checkin preview
    the branches that engagement rules (clicked:, opened:, checkin:) choose.
    """
    from campaigns.journey import Engagement, journey
    from campaigns.rendering import render_variant
    from scheduler.cli import _catalog, _context, fail
    from subscribers.symptoms import unknown_codes
    from templates import fill

    codes = frozenset(c.strip() for c in symptoms.split(",") if c.strip())
    bad = unknown_codes(codes)
    if bad:
        fail(f"unknown symptom code: {', '.join(bad)}")
    ctx = _context(migrate=False)
    _catalog(ctx)
    camp = ctx.catalog.get(campaign)
    if camp is None:
        fail(f"no campaign {campaign!r}; known: {', '.join(ctx.catalog.campaigns) or 'none'}")
    steps = {c.id: [s.id for s in c.steps] for c in ctx.catalog}

    def target(ref: str, option: str) -> tuple[str, str]:
        cid, _, step = ref.partition("/") if "/" in ref else (camp.id, "/", ref)
        if cid not in steps:
            fail(f"{option} {ref}: no campaign {cid!r}; known: {', '.join(steps)}")
        if step not in steps[cid]:
            fail(f"{option} {ref}: no step {step!r} in {cid}; steps: {', '.join(steps[cid])}")
        return cid, step

    engagement = Engagement(
        clicked=frozenset(target(r, "--clicked") for r in clicked),
        opened=frozenset(target(r, "--opened") for r in opened),
        checkin=checkin,
    )
    path = journey(camp, codes, engagement)
    subjects: list[str] = []
    for email in path.emails:
        variant = camp.step(email.step).variant(email.variant)
        rendered = render_variant(ctx.renderer, camp, variant)
        subjects.append(fill(rendered, {"first_name": first_name or "there"})[0])
    if as_json:
        data = path.as_dict()
        for item, subject in zip(data["emails"], subjects, strict=True):
            item["subject"] = subject
        echo(json.dumps(data, ensure_ascii=False))
        return
    who = ", ".join(path.symptoms) or "no symptoms stated"
    if path.excluded:
        echo(f"{camp.id} for {who}: {JOURNEY_REASONS[path.excluded]}")
        return
    weeks = path.emails[-1].week if path.emails else 0
    echo(f"{camp.id} for {who}: {len(path.emails)} emails over {weeks} weeks")
    if not camp.active:
        echo(f"(the campaign is {camp.meta.status}; nobody receives it until it is active)")
    width = max((len(e.step) for e in path.emails), default=4)
    echo(f"{'week':>4}  {'day':>3}  {'step':<{width}}  {'variant':<8}  subject")
    for e, subject in zip(path.emails, subjects, strict=True):
        echo(f"{e.week:>4}  {e.day:>3}  {e.step:<{width}}  {e.variant:<8}  {subject}")


# -- broadcasts --------------------------------------------------------------------------------
def _parse_at(value: str) -> datetime:
    text = value.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    from scheduler.cli import fail

    fail(
        f"--at must be a local date and time like '2026-12-01 09:00' (no zone: it is read in "
        f"each subscriber's own zone); got {value!r}"
    )


def _parse_segment(value: str | None) -> tuple[Any, Rule]:
    from pydantic import ValidationError

    from scheduler.cli import fail
    from subscribers.segments import parse_rule

    if value is None:
        return {"all": []}, EVERYONE
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--segment: cannot read {value[1:]}: {getattr(exc, 'strerror', None) or exc}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        fail(f"--segment is not valid YAML or JSON: {getattr(exc, 'problem', None) or exc}")
    try:
        return data, parse_rule(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if not str(p)[:1].isupper())
        msg = str(err["msg"]).removeprefix("Value error, ")
        fail(f"--segment: {where + ': ' if where else ''}{msg}")


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
def broadcast_command(
    file: Path,
    at_text: str,
    segment: str | None,
    slug: str | None,
    time_sensitive: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Schedule a one-off email (a newsletter) from FILE to a segment at a local time.

    FILE is Markdown written like a campaign step (front matter: subject, preheader, optional
    cta, review and variants). Only confirmed subscribers who are not suppressed, not pausing
    and have no red-flag symptom get it. It respects the send window and the one-email-in-seven-
    days cap (someone emailed recently gets it when the cap allows), and counts toward the cap;
    --time-sensitive sends it at its time whatever the cap says (it still counts).
    Running the same command again adds people who joined the segment since, and nobody twice.
    """
    from campaigns import broadcasts as bc
    from scheduler.broadcasting import BroadcastRefused, BroadcastRequest, schedule
    from scheduler.cli import _catalog, _context, fail

    local_at = _parse_at(at_text)
    segment_data, rule = _parse_segment(segment)
    slug = slug if slug is not None else bc.slug_from(file.stem)
    ctx = _context()
    _catalog(ctx)
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
    try:
        result = schedule(ctx, request, dry_run=dry_run, now=datetime.now(UTC))
    except BroadcastRefused as exc:
        for line in exc.details:
            echo(line, err=True)
        fail(str(exc))
    plan_capped = result["waiting_for_frequency_cap"]
    plan_closed = result["moved_to_open_time"]
    zones = result["zones"]
    excluded = result["excluded"]
    existing = result["already_scheduled"]
    added = result["added"]
    if as_json:
        echo(json.dumps(result))
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


@click.command("broadcasts")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def broadcasts_command(as_json: bool) -> None:
    """List broadcasts with their progress (waiting, sent, failed, skipped)."""
    from campaigns import broadcasts as bc
    from scheduler.cli import _context

    ctx = _context()
    rows = []
    with ctx.db.begin() as conn:
        for stored in bc.all_stored(conn):
            p = bc.progress(conn, stored.campaign_id)
            campaign = stored.campaign()
            rows.append(
                {
                    "id": stored.slug,
                    "campaign_id": stored.campaign_id,
                    "state": bc.state(stored, p),
                    "local_at": f"{stored.local_at:%Y-%m-%d %H:%M}",
                    "subject": campaign.steps[0].default.subject if campaign else "",
                    "file": stored.source_name,
                    "audience": p.audience,
                    "waiting": p.waiting,
                    "sent": p.sent,
                    "failed": p.failed,
                    "skipped": p.skipped,
                }
            )
    if as_json:
        echo(json.dumps(rows, ensure_ascii=False))
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
def cancel_broadcast_command(broadcast_id: str) -> None:
    """Cancel a broadcast: nobody still waiting gets it (sent emails cannot be recalled)."""
    from campaigns import broadcasts as bc
    from scheduler.cli import _context, fail

    ctx = _context()
    slug = broadcast_id.removeprefix("broadcast.")
    now = datetime.now(UTC)
    with ctx.db.begin() as conn:
        stored = bc.find(conn, bc.campaign_id_for(slug))
        if stored is None:
            known = ", ".join(s.slug for s in bc.all_stored(conn)) or "none"
            fail(f"no broadcast {slug!r}; known: {known}")
        if stored.status == "cancelled":
            echo(f"{slug!r} was already cancelled")
            return
        stopped, dropped = bc.cancel(conn, stored.campaign_id, now)
        sent = bc.progress(conn, stored.campaign_id).sent
    echo(f"cancelled {slug!r}: {stopped + dropped} not yet sent will not be; {sent} already sent")
