"""Scheduling a one-off broadcast (a newsletter): the checks, the per-zone plan and the writes.

One function, :func:`schedule`, serves ``clinicmail campaigns broadcast`` (and its
``--dry-run``) and the console's newsletter page, so the preview staff see is exactly what
scheduling does. The rules themselves are in :mod:`campaigns.broadcasts`.

Only text a clinician approved is scheduled: a newsletter (:mod:`campaigns.newsletters`) of the
same id, approved (or already scheduled), whose files are exactly these. ``campaigns broadcast``
with new text puts it in the review queue instead (:func:`submit_for_review`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from app.context import AppContext
from campaigns import broadcasts as bc
from campaigns import ledger
from campaigns import newsletters as nl
from campaigns.review import CLI
from core.errors import InputError
from storage import Database
from subscribers.segments import Rule


class BroadcastRefused(InputError, ValueError):
    """Nothing was scheduled: one line for the user, and the problems found, one per line."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


@dataclass(frozen=True)
class BroadcastRequest:
    slug: str
    source_name: str  # the main Markdown file's name
    sources: dict[str, str]  # {file name: text}
    segment: Any  # the rule as data (stored with the broadcast)
    rule: Rule
    local_at: datetime  # naive wall time, read in each person's zone
    folder: str = ""  # where the files came from, for problem messages
    label: str = "the newsletter"  # how messages name it
    # Goes at its time whatever the weekly cap says, and still counts toward it.
    time_sensitive: bool = False
    problems: list[str] = field(default_factory=list)  # found while reading the files


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


def approved_newsletter(
    conn: Connection, slug: str, sources: dict[str, str]
) -> nl.Newsletter | None:
    """The newsletter ``slug`` when a clinician approved exactly ``sources`` (it may be
    scheduled already); None otherwise."""
    letter = nl.by_slug(conn, slug)
    if letter is None or letter.state not in (nl.APPROVED, nl.SCHEDULED):
        return None
    return letter if letter.sources == sources else None


def submit_for_review(ctx: AppContext, req: BroadcastRequest, now: datetime) -> nl.Newsletter:
    """Put the text of ``req`` in the review queue as newsletter ``req.slug`` (new, or a draft
    of that id given this text), audited with the actor "cli". Raises :class:`BroadcastRefused`
    when that id holds other text already in review, approved or cancelled."""
    from campaigns.loader import parse_markdown
    from staff import audit

    parsed, _ = parse_markdown(req.sources[req.source_name], req.source_name, bc.BroadcastMeta)
    assert parsed is not None  # checked by schedule(dry_run=True) first
    fields = nl.Fields(
        subject=parsed.meta.subject,
        preheader=parsed.meta.preheader,
        body=parsed.body,
        audience=nl.Audience(),
        local_at=f"{req.local_at:%Y-%m-%dT%H:%M}",
        time_sensitive=req.time_sensitive,
    )
    write = audit.writer(None, now)
    with ctx.db.begin() as conn:
        letter = nl.by_slug(conn, req.slug)
        if letter is None:
            letter = nl.create(
                conn,
                slug=req.slug,
                fields=fields,
                editor_id=None,
                editor=audit.CLI_ACTOR,
                now=now,
                renderer=ctx.renderer,
                sources=req.sources,
                audit=write,
            )
        elif letter.state == nl.IN_REVIEW and letter.sources == req.sources:
            return letter
        elif letter.state == nl.DRAFT:
            letter = nl.save(
                conn,
                letter,
                fields=fields,
                actor=CLI,
                now=now,
                audit=write,
                renderer=ctx.renderer,
                detail={"from": req.source_name},
            )
            nl.set_sources(conn, letter, req.sources)
        else:
            raise BroadcastRefused(
                f"newsletter {req.slug!r} is {letter.state.replace('_', ' ')} with other text; "
                "ids are never reused, choose another with --id"
            )
        return nl.submit(conn, nl.require(conn, letter.id), now, audit=write)


def mark_scheduled(ctx: AppContext, slug: str, now: datetime, recipients: int) -> None:
    """After ``campaigns broadcast`` scheduled an approved newsletter: it is scheduled now
    (audited with the actor "cli"); a newsletter scheduled before stays as it is."""
    from staff import audit

    with ctx.db.begin() as conn:
        letter = nl.by_slug(conn, slug)
        if letter is not None and letter.state == nl.APPROVED:
            nl.mark_scheduled(
                conn,
                letter,
                now,
                audit=audit.writer(None, now),
                detail={"recipients": recipients, "local_at": letter.local_at},
            )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def schedule(
    ctx: AppContext, req: BroadcastRequest, *, dry_run: bool, now: datetime
) -> dict[str, Any]:
    """Check, plan and (unless ``dry_run``) schedule; returns the report ``--json`` prints.

    Raises :class:`BroadcastRefused` with nothing written. Scheduling the same broadcast again
    adds people who joined the segment since, and nobody twice.
    """
    slug, local_at = req.slug, req.local_at
    if not bc.SLUG.match(slug):
        raise BroadcastRefused(
            f"the broadcast id {slug!r} must be lowercase letters, digits and dashes "
            "(at most 54); choose one with --id"
        )
    campaign_id = bc.campaign_id_for(slug)
    lines = list(req.problems)
    campaign = None
    if not lines:
        campaign, problems = bc.build(
            campaign_id,
            req.source_name,
            req.sources,
            req.rule,
            ctx.renderer,
            folder=req.folder,
            time_sensitive=req.time_sensitive,
        )
        lines += [str(p) for p in problems]
    lines += _reference_problems([req.rule], ctx.catalog, "--segment")
    if campaign is not None:
        lines += _reference_problems(bc.variant_rules(campaign), ctx.catalog, req.label)
    if lines:
        raise BroadcastRefused(
            f"{len(lines)} problem(s) in {req.label}; nothing was scheduled", lines
        )
    assert campaign is not None  # no problems: it was built
    settings = ctx.settings
    times = settings.cadence
    start, end = times.window
    if not start <= local_at.time() < end:
        raise BroadcastRefused(
            f"--at {local_at:%H:%M} is outside the send window {settings.send_window} "
            "(CLINICMAIL_SEND_WINDOW); choose a time inside it"
        )
    if bc.local_instant(local_at, settings.zone) <= now:
        raise BroadcastRefused(
            f"--at {local_at:%Y-%m-%d %H:%M} has already passed in the clinic's zone"
        )

    def zone_name(tz: str | None) -> str:
        return getattr(times.zone(tz), "key", settings.timezone)

    def due_for(tz: str | None) -> datetime:
        return bc.local_instant(local_at, times.zone(tz))

    plan = _Plan()
    excluded = bc.Excluded()
    added = 0
    with ctx.db.begin() as conn:
        if not dry_run and approved_newsletter(conn, slug, req.sources) is None:
            raise BroadcastRefused(
                f"{req.label} has not been approved by a clinician; nothing was scheduled "
                "('clinicmail campaigns broadcast' puts it in the review queue)"
            )
        existing = bc.find(conn, campaign_id)
        if existing is not None:
            if existing.status == "cancelled":
                raise BroadcastRefused(
                    f"broadcast {slug!r} was cancelled; ids are never reused, choose a new --id"
                )
            if not bc.same_content(
                existing, req.sources, req.segment, local_at, req.time_sensitive
            ):
                raise BroadcastRefused(
                    f"broadcast {slug!r} is already scheduled with different content, segment or "
                    f"time; cancel it (clinicmail campaigns cancel-broadcast {slug}) and "
                    "schedule the new one under another --id"
                )
        elif not dry_run:
            bc.save(
                conn,
                campaign_id=campaign_id,
                source_name=req.source_name,
                sources=req.sources,
                segment=req.segment,
                local_at=local_at,
                now=now,
                time_sensitive=req.time_sensitive,
            )
        for chunk in bc.audience(conn, req.rule, now, due_for, excluded):
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
        {"zone": name, "count": count, "local": f"{local:%Y-%m-%d %H:%M}", "utc": _iso(due)}
        for name, (count, local, due) in sorted(plan.zones.items(), key=lambda kv: kv[1][2])
    ]
    return {
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
        "time_sensitive": req.time_sensitive,
        "waiting_for_frequency_cap": plan.capped,
        "waiting_for_email_in_flight": plan.in_flight,
        "waits": plan.waits,
        "cap_until": _iso(plan.cap_until),
        "moved_to_open_time": plan.closed,
        "last_delivery": _iso(plan.latest),
    }


def overview(db: Database) -> list[dict[str, Any]]:
    """Every broadcast with its progress, as ``clinicmail campaigns broadcasts --json`` prints."""
    rows = []
    with db.begin() as conn:
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
    return rows


@dataclass(frozen=True)
class Cancelled:
    already: bool  # it had been cancelled before: nothing changed
    not_sent: int  # waiting emails that now will not go
    sent: int  # emails already sent (they cannot be recalled)


def cancel(db: Database, slug: str, now: datetime) -> Cancelled:
    """Cancel broadcast ``slug``: nobody still waiting gets it. Raises :class:`BroadcastRefused`
    when there is no such broadcast."""
    with db.begin() as conn:
        stored = bc.find(conn, bc.campaign_id_for(slug))
        if stored is None:
            known = ", ".join(s.slug for s in bc.all_stored(conn)) or "none"
            raise BroadcastRefused(f"no broadcast {slug!r}; known: {known}")
        if stored.status == "cancelled":
            return Cancelled(already=True, not_sent=0, sent=0)
        stopped, dropped = bc.cancel(conn, stored.campaign_id, now)
        sent = bc.progress(conn, stored.campaign_id).sent
    return Cancelled(already=False, not_sent=stopped + dropped, sent=sent)
