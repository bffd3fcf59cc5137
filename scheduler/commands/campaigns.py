"""``clinicmail campaigns journey`` (the week-by-week emails a person with given symptoms gets,
with simulated engagement) and the one-off broadcasts: ``broadcast``, ``broadcasts``,
``cancel-broadcast``.

(``validate``, ``list`` and ``preview`` live in scheduler/cli.py.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

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
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    who = ", ".join(path.symptoms) or "no symptoms stated"
    if path.excluded:
        click.echo(f"{camp.id} for {who}: {JOURNEY_REASONS[path.excluded]}")
        return
    weeks = path.emails[-1].week if path.emails else 0
    click.echo(f"{camp.id} for {who}: {len(path.emails)} emails over {weeks} weeks")
    if not camp.active:
        click.echo(f"(the campaign is {camp.meta.status}; nobody receives it until it is active)")
    width = max((len(e.step) for e in path.emails), default=4)
    click.echo(f"{'week':>4}  {'day':>3}  {'step':<{width}}  {'variant':<8}  subject")
    for e, subject in zip(path.emails, subjects, strict=True):
        click.echo(f"{e.week:>4}  {e.day:>3}  {e.step:<{width}}  {e.variant:<8}  {subject}")


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


def _reference_problems(rules: list[Rule], catalog: Any, where: str) -> list[str]:
    from campaigns.references import engaged, target_problem

    steps = {c.id: [s.id for s in c.steps] for c in catalog}
    out = []
    for rule in rules:
        for leaf in engaged(rule):
            why = target_problem(leaf, steps)
            if why:
                out.append(f"{where}: {why}")
    return out


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass
class _Plan:
    """Who would get a broadcast and when (the dry-run report, and what scheduling writes)."""

    recipients: int = 0
    zones: dict[str, list[Any]] = field(default_factory=dict)  # zone -> [count, local, utc]
    capped: int = 0
    cap_until: datetime | None = None
    in_flight: int = 0  # an earlier campaign email to them is not accepted yet
    closed: int = 0
    latest: datetime | None = None
    # Who waits and why: (subscriber id, reason, until), for --json.
    waits: list[dict[str, Any]] = field(default_factory=list)

    def note(self, zone: str, local: datetime, due: datetime, actual: datetime) -> None:
        self.recipients += 1
        entry = self.zones.setdefault(zone, [0, local, due])
        entry[0] += 1
        if self.latest is None or actual > self.latest:
            self.latest = actual


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
    from campaigns import ledger
    from campaigns.cadence import Cadence
    from scheduler.cli import _catalog, _context, fail

    local_at = _parse_at(at_text)
    segment_data, rule = _parse_segment(segment)
    slug = slug if slug is not None else bc.slug_from(file.stem)
    if not bc.SLUG.match(slug):
        fail(
            f"the broadcast id {slug!r} must be lowercase letters, digits and dashes "
            "(at most 54); choose one with --id"
        )
    campaign_id = bc.campaign_id_for(slug)
    ctx = _context()
    _catalog(ctx)
    sources, problems = bc.read_sources(file)
    campaign = None
    if not problems:
        campaign, problems = bc.build(
            campaign_id,
            file.name,
            sources,
            rule,
            ctx.renderer,
            folder=str(file.parent) if str(file.parent) != "." else "",
            time_sensitive=time_sensitive,
        )
    lines = [str(p) for p in problems]
    lines += _reference_problems([rule], ctx.catalog, "--segment")
    if campaign is not None:
        lines += _reference_problems(bc.variant_rules(campaign), ctx.catalog, str(file))
    if lines:
        for line in lines:
            click.echo(line, err=True)
        fail(f"{len(lines)} problem(s) in {file}; nothing was scheduled")
    assert campaign is not None  # no problems: it was built
    settings = ctx.settings
    times = Cadence(settings.zone, settings.send_window, settings.closures)
    start, end = times.window
    if not start <= local_at.time() < end:
        fail(
            f"--at {local_at:%H:%M} is outside the send window {settings.send_window} "
            "(CLINICMAIL_SEND_WINDOW); choose a time inside it"
        )
    now = datetime.now(UTC)
    if bc.local_instant(local_at, settings.zone) <= now:
        fail(f"--at {local_at:%Y-%m-%d %H:%M} has already passed in the clinic's zone")

    def zone_name(tz: str | None) -> str:
        return getattr(times.zone(tz), "key", settings.timezone)

    def due_for(tz: str | None) -> datetime:
        return bc.local_instant(local_at, times.zone(tz))

    plan = _Plan()
    excluded = bc.Excluded()
    added = 0
    with ctx.db.begin() as conn:
        existing = bc.find(conn, campaign_id)
        if existing is not None:
            if existing.status == "cancelled":
                fail(f"broadcast {slug!r} was cancelled; ids are never reused, choose a new --id")
            if not bc.same_content(existing, sources, segment_data, local_at, time_sensitive):
                fail(
                    f"broadcast {slug!r} is already scheduled with different content, segment or "
                    f"time; cancel it (clinicmail campaigns cancel-broadcast {slug}) and "
                    "schedule the new one under another --id"
                )
        elif not dry_run:
            bc.save(
                conn,
                campaign_id=campaign_id,
                source_name=file.name,
                sources=sources,
                segment=segment_data,
                local_at=local_at,
                now=now,
                time_sensitive=time_sensitive,
            )
        for chunk in bc.audience(conn, rule, now, due_for, excluded):
            in_flight = ledger.campaign_in_flight(conn, (p.subscriber_id for p, _ in chunk))
            for person, due in chunk:
                # The same rule the planner applies when the broadcast falls due.
                slot = times.earliest(
                    due,
                    campaign,
                    zone=person.timezone,
                    last_accepted=person.last_campaign_send_at,
                    in_flight_from=in_flight.get(person.subscriber_id),
                )
                if slot.reason == "closed":
                    plan.closed += 1
                elif slot.reason == "in_flight":
                    plan.in_flight += 1
                elif slot.reason == "weekly_cap":
                    plan.capped += 1
                    if plan.cap_until is None or slot.at > plan.cap_until:
                        plan.cap_until = slot.at
                if slot.reason is not None:
                    plan.waits.append(
                        {
                            "subscriber_id": person.subscriber_id,
                            "reason": slot.reason,
                            "until": _iso(slot.at),
                        }
                    )
                plan.note(zone_name(person.timezone), local_at, due, slot.at)
            if not dry_run:
                added += bc.enroll(conn, campaign_id, chunk, now)
    zones = [
        {
            "zone": name,
            "count": count,
            "local": f"{local:%Y-%m-%d %H:%M}",
            "utc": due.isoformat().replace("+00:00", "Z"),
        }
        for name, (count, local, due) in sorted(plan.zones.items(), key=lambda kv: kv[1][2])
    ]
    result: dict[str, Any] = {
        "broadcast": slug,
        "campaign_id": campaign_id,
        "dry_run": dry_run,
        "already_scheduled": existing is not None,
        "recipients": plan.recipients,
        "added": added,
        "excluded": {
            "red_flag": excluded.red_flag,
            "suppressed": excluded.suppressed,
            "paused": excluded.paused,
        },
        "zones": zones,
        "time_sensitive": time_sensitive,
        "waiting_for_frequency_cap": plan.capped,
        "waiting_for_email_in_flight": plan.in_flight,
        "waits": plan.waits,
        "cap_until": plan.cap_until.isoformat().replace("+00:00", "Z") if plan.cap_until else None,
        "moved_to_open_time": plan.closed,
        "last_delivery": plan.latest.isoformat().replace("+00:00", "Z") if plan.latest else None,
    }
    if as_json:
        click.echo(json.dumps(result))
        return
    verb = "would send" if dry_run else "scheduled"
    head = f"{verb} {slug!r} to {plan.recipients} subscriber(s) at {local_at:%Y-%m-%d %H:%M} local"
    if existing is not None and not dry_run:
        head = f"{slug!r} was already scheduled; added {added} new subscriber(s)"
    click.echo(head)
    for z in zones:
        click.echo(f"  {z['count']:>6}  {z['zone']:<24} {z['local']} local = {z['utc']}")
    if plan.capped:
        click.echo(
            f"  {plan.capped} had a campaign email in the last 7 days and get it when the cap "
            f"allows (the last by {result['cap_until']})"
        )
    if plan.in_flight:
        click.echo(
            f"  {plan.in_flight} have an earlier campaign email not yet accepted by the provider "
            "and get this one seven days after it is"
        )
    if plan.closed:
        click.echo(f"  {plan.closed} fall on a closed day or hour and go at the next open time")
    if time_sensitive:
        click.echo(
            "  time-sensitive: goes at its time even to people emailed in the last seven days; "
            "their next series email waits seven days from it"
        )
    skipped = excluded.red_flag + excluded.suppressed + excluded.paused
    if skipped:
        click.echo(
            f"  left out: {excluded.red_flag} with a red-flag symptom, {excluded.suppressed} "
            f"suppressed, {excluded.paused} pausing email"
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
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("no broadcasts; schedule one with 'clinicmail campaigns broadcast FILE --at …'")
        return
    for r in rows:
        click.echo(
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
            click.echo(f"{slug!r} was already cancelled")
            return
        stopped, dropped = bc.cancel(conn, stored.campaign_id, now)
        sent = bc.progress(conn, stored.campaign_id).sent
    click.echo(
        f"cancelled {slug!r}: {stopped + dropped} not yet sent will not be; {sent} already sent"
    )
