"""One-off broadcasts (newsletters): one email to a segment, at a chosen local time.

A broadcast is a one-step campaign kept in the database (table ``broadcasts``), so it survives
restarts and every process sees it. Scheduling one enrolls each person in the audience with
``next_due_at`` set to the chosen wall time in *their* zone (else the clinic's); from there the
ordinary machinery takes over: the planner writes its ledger row when due (the ledger key
``(subscriber, "broadcast.<slug>", "message")`` makes it once per person), dispatch re-checks
consent and suppression at claim time and batches recipients at the provider.

Rules, decided once:

- **Who**: confirmed, not suppressed, no red-flag symptom, not pausing at the chosen time, and
  matching the segment. The segment is checked again when the email is planned, so someone
  whose symptoms changed since no longer gets it; someone who unsubscribed never does.
- **Weekly cap** (:mod:`campaigns.cadence`): a broadcast is campaign email. A person whose last
  campaign email was accepted less than seven days before gets the broadcast as soon as the cap
  allows (at the next open moment of their send window), and the broadcast counts toward the
  cap, so their next series email waits seven days from its acceptance.
- **Time-sensitive**: staff may mark a broadcast time-sensitive (a closure, a changed phone
  number): it goes at its time whatever the cap says, and still counts toward it.
- **Pause**: a person who pauses email before it goes out is skipped, not caught up later.
- **Cancel**: waiting enrollments stop and queued ledger rows are cancelled; emails already
  handed to the provider cannot be recalled.
- A broadcast id is never reused, so its content never changes once scheduled.

The Markdown file is written like a campaign step (front matter with ``subject``, ``preheader``,
optional ``cta``, ``review`` and ``variants``; the body in Markdown) and validated with the
same sandbox rules, reporting ``file:line: problem``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from sqlalchemy import Connection, func, insert, not_, select, update

from campaigns import ledger, ledger_reads
from campaigns.definitions import (
    Campaign,
    CampaignMeta,
    Review,
    Step,
    Variant,
    VariantMeta,
    VariantRef,
    unique_variants,
)
from campaigns.ledger import (
    CANCELLED,
    CLAIMED,
    FAILED,
    PENDING,
    RETRY,
    SENDING,
    SENT,
    UNKNOWN,
)
from campaigns.loader import (
    CAMPAIGN_VARIABLES,
    Problem,
    check_template,
    missing_variant_file,
    parse_markdown,
    variant_of,
)
from campaigns.references import BROADCAST_PREFIX
from campaigns.tables import (
    ACTIVE,
    BROADCAST_CANCELLED,
    BROADCAST_SCHEDULED,
    COMPLETED,
    LEFT,
    STOPPED,
    broadcasts,
    enrollments,
)
from storage import Database
from storage.sql import dialect_insert
from subscribers import store
from subscribers.segments import EVERYONE, Rule, compile_rule, parse_rule
from subscribers.tables import subscribers
from templates import Renderer

STEP_ID = "message"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,53}$")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
CHUNK = 2000


class BroadcastMeta(VariantMeta):
    """A broadcast's front matter: a step's, without delay or condition (the audience is
    chosen with ``--segment``)."""

    variants: list[VariantRef] = Field(default_factory=list)

    @field_validator("variants")
    @classmethod
    def _unique(cls, v: list[VariantRef]) -> list[VariantRef]:
        return unique_variants(v)


def campaign_id_for(slug: str) -> str:
    return f"{BROADCAST_PREFIX}{slug}"


def is_broadcast(campaign_id: str) -> bool:
    return campaign_id.startswith(BROADCAST_PREFIX)


def slug_from(name: str) -> str:
    """A file stem as a broadcast id: ``December News.md`` → ``december-news``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:54].strip("-")


def read_sources(path: Path) -> tuple[dict[str, str], list[Problem]]:
    """The broadcast file and the variant files it lists, as ``{file name: text}``."""
    rel = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, [Problem(rel, None, "no such file")]
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [Problem(rel, None, f"cannot read: {exc}")]
    sources = {path.name: text}
    parsed, problems = parse_markdown(text, rel, BroadcastMeta)
    if parsed is None:
        return sources, problems
    for ref in parsed.meta.variants:
        vpath = path.parent / ref.file
        if "/" in ref.file or "\\" in ref.file or not vpath.is_file():
            continue  # reported by build(), with its line
        try:
            sources[ref.file] = vpath.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(vpath), None, f"cannot read: {exc}"))
    return sources, problems


def build(
    campaign_id: str,
    main: str,
    sources: Mapping[str, str],
    segment: Rule,
    renderer: Renderer | None = None,
    *,
    folder: str = "",
    time_sensitive: bool = False,
) -> tuple[Campaign | None, list[Problem]]:
    """The one-step campaign a broadcast sends. With ``renderer`` every template is checked in
    the sandbox (scheduling); without, stored sources are trusted (they were checked then)."""

    def rel(name: str) -> str:
        return str(Path(folder) / name) if folder else name

    parsed, problems = parse_markdown(sources[main], rel(main), BroadcastMeta)
    if parsed is None:
        return None, problems
    meta: BroadcastMeta = parsed.meta
    default = Variant(
        id="default",
        subject=meta.subject,
        preheader=meta.preheader,
        body=parsed.body,
        file=rel(main),
        body_line=parsed.body_line,
    )
    if renderer is not None:
        problems += check_template(renderer, default, parsed.front_matter, CAMPAIGN_VARIABLES)
    variants: list[Variant] = []
    for i, ref in enumerate(meta.variants):
        text = sources.get(ref.file)
        if text is None or "/" in ref.file or "\\" in ref.file:
            problems.append(missing_variant_file(rel(main), parsed.front_matter, i, ref, main))
            continue
        vparsed, vprobs = parse_markdown(text, rel(ref.file), VariantMeta)
        problems += vprobs
        if vparsed is None:
            continue
        variant = variant_of(ref, vparsed, rel(ref.file))
        if renderer is not None:
            problems += check_template(renderer, variant, vparsed.front_matter, CAMPAIGN_VARIABLES)
        variants.append(variant)
    if problems:
        return None, problems
    step = Step(
        id=STEP_ID,
        number=1,
        delay_days=0,
        when=segment,
        default=default,
        variants=tuple(variants),
    )
    # The id has a dot, which campaign folders cannot use: built without re-validation.
    camp_meta = CampaignMeta.model_construct(
        id=campaign_id,
        name=meta.subject,
        description="",
        status="active",
        cadence_days=7,
        audience=EVERYONE,
        send_window=None,
        review=meta.review or Review(),
    )
    campaign = Campaign(meta=camp_meta, steps=(step,), one_off=True, time_sensitive=time_sensitive)
    return campaign, []


def variant_rules(campaign: Campaign) -> list[Rule]:
    return [v.when for s in campaign.steps for v in s.variants if v.when is not None]


# -- storage -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stored:
    campaign_id: str
    source_name: str
    sources: dict[str, str]
    segment: Any  # the rule as data
    local_at: datetime  # naive wall time
    status: str
    created_at: datetime
    cancelled_at: datetime | None
    time_sensitive: bool = False

    @property
    def slug(self) -> str:
        return self.campaign_id.removeprefix(BROADCAST_PREFIX)

    def campaign(self) -> Campaign | None:
        built, _ = build(
            self.campaign_id,
            self.source_name,
            self.sources,
            parse_rule(self.segment),
            time_sensitive=self.time_sensitive,
        )
        if built is not None and self.status == BROADCAST_CANCELLED:
            meta = built.meta.model_copy(update={"status": "archived"})
            return built.model_copy(update={"meta": meta})
        return built


def _stored(row: Any) -> Stored:
    return Stored(
        campaign_id=row.campaign_id,
        source_name=row.source_name,
        sources=json.loads(row.sources),
        segment=json.loads(row.segment),
        local_at=datetime.strptime(row.local_at, LOCAL_FORMAT),
        status=row.status,
        created_at=row.created_at,
        cancelled_at=row.cancelled_at,
        time_sensitive=bool(row.time_sensitive),
    )


def find(conn: Connection, campaign_id: str) -> Stored | None:
    row = conn.execute(select(broadcasts).where(broadcasts.c.campaign_id == campaign_id)).first()
    return _stored(row) if row is not None else None


def all_stored(conn: Connection) -> list[Stored]:
    return [_stored(r) for r in conn.execute(select(broadcasts).order_by(broadcasts.c.id))]


def save(
    conn: Connection,
    *,
    campaign_id: str,
    source_name: str,
    sources: Mapping[str, str],
    segment: Any,
    local_at: datetime,
    now: datetime,
    time_sensitive: bool = False,
) -> None:
    conn.execute(
        insert(broadcasts).values(
            campaign_id=campaign_id,
            source_name=source_name,
            sources=json.dumps(dict(sources), ensure_ascii=False, sort_keys=True),
            segment=json.dumps(segment, sort_keys=True),
            local_at=local_at.strftime(LOCAL_FORMAT),
            status=BROADCAST_SCHEDULED,
            created_at=now,
            time_sensitive=time_sensitive,
        )
    )


def same_content(
    stored: Stored,
    sources: Mapping[str, str],
    segment: Any,
    local_at: datetime,
    time_sensitive: bool = False,
) -> bool:
    return (
        stored.time_sensitive == time_sensitive
        and stored.sources == dict(sources)
        and json.dumps(stored.segment, sort_keys=True) == json.dumps(segment, sort_keys=True)
        and stored.local_at == local_at
    )


def cancel(conn: Connection, campaign_id: str, now: datetime) -> tuple[int, int]:
    """Stop a broadcast: returns (waiting people stopped, queued emails cancelled)."""
    conn.execute(
        update(broadcasts)
        .where(broadcasts.c.campaign_id == campaign_id, broadcasts.c.status == BROADCAST_SCHEDULED)
        .values(status=BROADCAST_CANCELLED, cancelled_at=now)
    )
    stopped = conn.execute(
        update(enrollments)
        .where(enrollments.c.campaign_id == campaign_id, enrollments.c.status == ACTIVE)
        .values(status=LEFT, next_due_at=None, updated_at=now)
    ).rowcount
    dropped = ledger.cancel_campaign(conn, campaign_id, "the broadcast was cancelled")
    return int(stopped or 0), dropped


class BroadcastSource:
    """Broadcasts for :class:`campaigns.loader.Catalog` (see ``StoredCampaigns``). Content never
    changes once scheduled, so each is read once per process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, Campaign] = {}

    def _load(self, conn: Connection, campaign_id: str) -> Campaign | None:
        stored = find(conn, campaign_id)
        campaign = stored.campaign() if stored is not None else None
        if campaign is not None:
            self._cache[campaign_id] = campaign
        return campaign

    def get(self, campaign_id: str) -> Campaign | None:
        if not is_broadcast(campaign_id):
            return None
        if campaign_id not in self._cache:
            with self.db.begin() as conn:
                return self._load(conn, campaign_id)
        return self._cache[campaign_id]

    def preload(self, conn: Connection, campaign_ids: Iterable[str]) -> None:
        for campaign_id in campaign_ids:
            if is_broadcast(campaign_id) and campaign_id not in self._cache:
                self._load(conn, campaign_id)


# -- the audience --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    timezone: str | None
    paused_until: datetime | None
    last_campaign_send_at: datetime | None


@dataclass
class Excluded:
    red_flag: int = 0
    suppressed: int = 0
    paused: int = 0


def local_instant(local_at: datetime, zone: ZoneInfo) -> datetime:
    """The UTC moment of wall time ``local_at`` in ``zone`` (a time skipped by a DST change
    is read as the moment after the gap, as zoneinfo does)."""
    return local_at.replace(tzinfo=zone).astimezone(UTC)


def audience(
    conn: Connection,
    segment: Rule,
    now: datetime,
    due_for: Any,
    excluded: Excluded,
) -> Iterator[list[tuple[Recipient, datetime]]]:
    """Confirmed, not red-flag, not suppressed, not paused people matching ``segment``, in
    keyset chunks, each with their due moment ``due_for(timezone)``. Counts the people the
    segment matched but the rules left out into ``excluded``."""
    matches = compile_rule(segment, now=now)
    excluded.red_flag += int(
        conn.execute(
            select(func.count())
            .select_from(subscribers)
            .where(subscribers.c.status == store.CONFIRMED, subscribers.c.red_flag, matches)
        ).scalar_one()
    )
    after = 0
    while True:
        rows = conn.execute(
            select(
                subscribers.c.id,
                subscribers.c.email_key,
                subscribers.c.timezone,
                subscribers.c.paused_until,
                subscribers.c.last_campaign_send_at,
            )
            .where(
                subscribers.c.status == store.CONFIRMED,
                not_(subscribers.c.red_flag),
                matches,
                subscribers.c.id > after,
            )
            .order_by(subscribers.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        suppressed = store.suppressed_keys(conn, (r.email_key for r in rows))
        chunk: list[tuple[Recipient, datetime]] = []
        for r in rows:
            if r.email_key in suppressed:
                excluded.suppressed += 1
                continue
            due: datetime = due_for(r.timezone)
            if r.paused_until is not None and r.paused_until > due:
                excluded.paused += 1
                continue
            chunk.append(
                (Recipient(r.id, r.timezone, r.paused_until, r.last_campaign_send_at), due)
            )
        if chunk:
            yield chunk


def enroll(
    conn: Connection, campaign_id: str, chunk: list[tuple[Recipient, datetime]], now: datetime
) -> int:
    """Enroll one audience chunk, due at each person's local moment. Idempotent: someone
    already enrolled (a re-run) keeps their row; returns how many were new."""
    if not chunk:
        return 0
    stmt = (
        dialect_insert(conn, enrollments)
        .on_conflict_do_nothing(
            index_elements=[enrollments.c.subscriber_id, enrollments.c.campaign_id]
        )
        .returning(enrollments.c.id)  # executemany rowcount is not reliable on every driver
    )
    result = conn.execute(
        stmt,
        [
            {
                "subscriber_id": r.subscriber_id,
                "campaign_id": campaign_id,
                "step_index": 0,
                "next_due_at": due,
                "status": ACTIVE,
                "created_at": now,
                "updated_at": now,
            }
            for r, due in chunk
        ],
    )
    return len(result.all())


# -- progress ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    audience: int  # people enrolled
    waiting: int  # not yet sent: due later, or queued
    sent: int
    failed: int  # failed or cancelled at send time (e.g. unsubscribed since)
    skipped: int  # left out when due: unsubscribed, paused, no longer in the segment, cancelled


def progress(conn: Connection, campaign_id: str) -> Progress:
    by_enrollment: dict[str, int] = dict(
        conn.execute(
            select(enrollments.c.status, func.count())
            .where(enrollments.c.campaign_id == campaign_id)
            .group_by(enrollments.c.status)
        ).all()
    )
    by_send = ledger_reads.by_status_of_campaign(conn, campaign_id)
    total_sends = sum(by_send.values())
    in_flight = sum(by_send.get(s, 0) for s in (PENDING, RETRY, CLAIMED, SENDING, UNKNOWN))
    audience_size = sum(by_enrollment.values())
    done = by_enrollment.get(COMPLETED, 0)
    return Progress(
        audience=audience_size,
        waiting=by_enrollment.get(ACTIVE, 0) + in_flight,
        sent=by_send.get(SENT, 0),
        failed=by_send.get(FAILED, 0) + by_send.get(CANCELLED, 0),
        skipped=by_enrollment.get(LEFT, 0)
        + by_enrollment.get(STOPPED, 0)
        + max(done - total_sends, 0),
    )


def state(stored: Stored, p: Progress) -> str:
    """cancelled | scheduled (nothing sent yet) | sending | done."""
    if stored.status == BROADCAST_CANCELLED:
        return "cancelled"
    if p.waiting == 0:
        return "done"
    return "sending" if p.sent or p.failed or p.skipped else "scheduled"
