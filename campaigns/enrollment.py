"""Enrollment: who is in which campaign, and which step is due next."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    case,
    func,
    literal,
    literal_column,
    select,
    true,
    tuple_,
    update,
)

from campaigns.definitions import Campaign, Step, Variant
from campaigns.ledger import SENT
from campaigns.ledger_reads import campaign_history_of
from campaigns.loader import Catalog
from campaigns.references import BROADCAST_PREFIX
from campaigns.tables import ACTIVE, COMPLETED, LEFT, STOPPED, enrollments
from storage.bulk import in_values, rows_table
from storage.schema import UTCDateTime
from storage.sql import dialect_insert
from subscribers.segments import Facts
from subscribers.store import CONFIRMED, Profile


@dataclass(frozen=True)
class Due:
    enrollment_id: int
    subscriber_id: int
    campaign_id: str
    step_index: int
    next_due_at: datetime
    episode: int = 1
    # When this episode began (None: the first episode); goal events before it belong to an
    # earlier episode.
    episode_started_at: datetime | None = None


def eligible(campaign: Campaign, profile: Profile, now: datetime) -> bool:
    """Red-flag subscribers are never enrolled in an educational drip, whatever the rule says."""
    return (
        campaign.active
        and profile.status == CONFIRMED
        and not profile.red_flag
        and campaign.meta.audience.matches(profile.facts(now))
    )


def enroll(conn: Connection, catalog: Catalog, people: Iterable[Profile], now: datetime) -> int:
    """Enter each confirmed person into every active campaign whose audience they match.

    Idempotent: an existing enrollment is left as it is (a re-import never restarts a series),
    except one *stopped* when the person unsubscribed: being confirmed again (a new signup and
    confirmation) resumes it at the step where it stopped. The first email is due at once; the
    planner waits for the person's send window.
    """
    campaigns = catalog.active()
    rows = [
        (profile.id, campaign.id)
        for profile in people
        for campaign in campaigns
        if eligible(campaign, profile, now)
    ]
    if not rows:
        return 0
    c = enrollments.c
    moment = literal(now, UTCDateTime())  # due now; created and updated now
    # One INSERT … SELECT for the whole batch (an import enrols a thousand people at a time).
    source = rows_table(conn, [c.subscriber_id, c.campaign_id], rows, "entering")
    ins = dialect_insert(conn, enrollments).from_select(
        [
            c.subscriber_id,
            c.campaign_id,
            c.step_index,
            c.next_due_at,
            c.status,
            c.created_at,
            c.updated_at,
        ],
        select(
            source.c.subscriber_id,
            source.c.campaign_id,
            literal(0),
            moment,
            literal(ACTIVE),
            moment,
            moment,
        ).where(true()),  # SQLite reads "SELECT … ON CONFLICT" ambiguously without a WHERE
    )
    stmt = ins.on_conflict_do_update(
        index_elements=[c.subscriber_id, c.campaign_id],
        set_={"status": ACTIVE, "next_due_at": ins.excluded.next_due_at, "updated_at": now},
        where=c.status == STOPPED,
    )
    result = conn.execute(stmt)
    return max(result.rowcount, 0)


@dataclass(frozen=True)
class Reentry:
    """What a reported new episode did: the series the person started again, and those they
    may start again only later (the campaign's ``reentry_after_days`` since the last episode
    ended has not passed yet), with the earliest moment."""

    started: tuple[str, ...] = ()
    not_yet: tuple[tuple[str, datetime], ...] = ()


def reenter(conn: Connection, catalog: Catalog, profile: Profile, now: datetime) -> Reentry:
    """The person reports a new episode of pain: every series they finished or left starts
    again from its first step, as the next episode, where the campaign allows re-entry
    (``reentry_after_days``), its audience matches their symptoms now, and at least that many
    days passed since the last episode ended. Series they never entered are left to
    :func:`enroll`; a series still running is not restarted; a *stopped* one (they stopped
    all email) resumes on a new confirmation, not here.

    The first email of the new episode is due at once, and the planner's cadence rule still
    applies: it waits out the weekly cap from the person's last accepted email like any other.
    The earlier episode's rows stay in the ledger (their key has the old episode number).
    """
    c = enrollments.c
    rows = conn.execute(
        select(c.id, c.campaign_id, c.updated_at).where(
            c.subscriber_id == profile.id, c.status.in_((COMPLETED, LEFT))
        )
    ).all()
    started: list[str] = []
    not_yet: list[tuple[str, datetime]] = []
    for row_id, campaign_id, ended_at in rows:
        campaign = catalog.get(campaign_id)
        if (
            campaign is None
            or campaign.one_off
            or campaign.meta.reentry_after_days is None
            or not eligible(campaign, profile, now)
        ):
            continue
        earliest = ended_at + timedelta(days=campaign.meta.reentry_after_days)
        if earliest > now:
            not_yet.append((campaign_id, earliest))
            continue
        changed = conn.execute(
            update(enrollments)
            .where(c.id == row_id, c.status.in_((COMPLETED, LEFT)))
            .values(
                episode=c.episode + 1,
                episode_started_at=now,
                step_index=0,
                status=ACTIVE,
                next_due_at=now,
                updated_at=now,
            )
        )
        if changed.rowcount:
            started.append(campaign_id)
    return Reentry(tuple(sorted(started)), tuple(sorted(not_yet)))


def episodes_of(conn: Connection, subscriber_id: int) -> list[dict[str, object]]:
    """A person's history per series and episode, oldest first: ``campaign_id``, ``episode``,
    ``status`` (the enrollment's for the current episode, ``ended`` for an earlier one),
    ``started_at`` and the ``emails`` accepted in it (step ids, in order). Broadcasts aside."""
    c = enrollments.c
    current = {
        r.campaign_id: r
        for r in conn.execute(
            select(c.campaign_id, c.episode, c.status, c.created_at, c.episode_started_at).where(
                c.subscriber_id == subscriber_id
            )
        )
        if not r.campaign_id.startswith(BROADCAST_PREFIX)
    }
    emails: dict[tuple[str, int], list[str]] = {}
    first: dict[tuple[str, int], datetime] = {}
    for campaign_id, episode, step_id, status, created_at in campaign_history_of(
        conn, subscriber_id
    ):
        if campaign_id not in current:
            continue
        key = (campaign_id, int(episode))
        first.setdefault(key, created_at)
        if status == SENT:
            emails.setdefault(key, []).append(step_id)
    out: list[dict[str, object]] = []
    for campaign_id, row in current.items():
        for episode in range(1, int(row.episode) + 1):
            key = (campaign_id, episode)
            now_on = episode == row.episode
            if now_on:
                started = row.episode_started_at or row.created_at
            else:
                started = row.created_at if episode == 1 else first.get(key)
            out.append(
                {
                    "campaign_id": campaign_id,
                    "episode": episode,
                    "status": row.status if now_on else "ended",
                    "started_at": started,
                    "emails": emails.get(key, []),
                }
            )
    out.sort(key=lambda e: (str(e["started_at"]), str(e["campaign_id"])))
    return out


def wake(conn: Connection, campaign_id: str, now: datetime) -> int:
    """Make a campaign's waiting enrollments due again at once, after its content was approved
    (the planner held them while it awaited review): someone not sent its first step yet is due
    from when they were enrolled, anyone else from ``now``. Returns how many."""
    c = enrollments.c
    moment = literal(now, UTCDateTime())
    done = conn.execute(
        update(enrollments)
        .where(
            c.campaign_id == campaign_id,
            c.status == ACTIVE,
            c.next_due_at.is_not(None),
            c.next_due_at > moment,
        )
        .values(next_due_at=case((c.step_index == 0, c.created_at), else_=moment))
    )
    return int(done.rowcount or 0)


def leave_all(conn: Connection, subscriber_id: int, now: datetime) -> None:
    """The person stopped all email (unsubscribed, or a red flag): every series stops."""
    conn.execute(
        update(enrollments)
        .where(enrollments.c.subscriber_id == subscriber_id, enrollments.c.status == ACTIVE)
        .values(status=STOPPED, next_due_at=None, updated_at=now)
    )


def leave(conn: Connection, subscriber_id: int, campaign_id: str, now: datetime) -> bool:
    """Leave one campaign; re-enrolment never revives it (enroll skips existing rows)."""
    result = conn.execute(
        update(enrollments)
        .where(
            enrollments.c.subscriber_id == subscriber_id,
            enrollments.c.campaign_id == campaign_id,
            enrollments.c.status == ACTIVE,
        )
        .values(status=LEFT, next_due_at=None, updated_at=now)
    )
    return bool(result.rowcount)


def active_campaign_ids(conn: Connection, subscriber_id: int) -> list[str]:
    """The series a person is in (a waiting one-off broadcast is not a series)."""
    return [
        cid
        for cid in conn.execute(
            select(enrollments.c.campaign_id)
            .where(enrollments.c.subscriber_id == subscriber_id, enrollments.c.status == ACTIVE)
            .order_by(enrollments.c.id)
        ).scalars()
        if not cid.startswith(BROADCAST_PREFIX)
    ]


def due_batch(
    conn: Connection, now: datetime, after: tuple[datetime, int] | None, limit: int
) -> list[Due]:
    """Active enrollments due by ``now``, keyset-paged in ``ix_enrollments_due`` order
    ``(next_due_at, id)`` after ``after``. The status is a literal in the SQL so the partial
    index applies (SQLite cannot match a bound parameter against an index's WHERE)."""
    query = select(
        enrollments.c.id,
        enrollments.c.subscriber_id,
        enrollments.c.campaign_id,
        enrollments.c.step_index,
        enrollments.c.next_due_at,
        enrollments.c.episode,
        enrollments.c.episode_started_at,
    ).where(
        enrollments.c.status == literal_column(f"'{ACTIVE}'"),
        enrollments.c.next_due_at <= now,
    )
    if after is not None:
        query = query.where(tuple_(enrollments.c.next_due_at, enrollments.c.id) > after)
    rows = conn.execute(query.order_by(enrollments.c.next_due_at, enrollments.c.id).limit(limit))
    return [Due(*r) for r in rows]


def one_offs_due(conn: Connection, subscriber_ids: Iterable[int], now: datetime) -> set[int]:
    """People among ``subscriber_ids`` with a one-off broadcast due by ``now``: their series
    email gives way, so a broadcast is never starved by a series due at the same moment."""
    ids = list(subscriber_ids)
    if not ids:
        return set()
    return set(
        conn.execute(
            select(enrollments.c.subscriber_id).where(
                in_values(conn, enrollments.c.subscriber_id, ids),
                enrollments.c.status == ACTIVE,
                enrollments.c.next_due_at <= now,
                enrollments.c.campaign_id.startswith(BROADCAST_PREFIX, autoescape=True),
            )
        ).scalars()
    )


def next_step(
    campaign: Campaign, index: int, facts: Facts, *, goal_reached: bool = False
) -> tuple[int, Step, Variant] | None:
    """The first step at or after ``index`` that applies to this person, with their variant;
    once the person reached the campaign's goal, booking steps (``until_goal``) are skipped."""
    for i in range(index, len(campaign.steps)):
        step = campaign.steps[i]
        if goal_reached and step.until_goal:
            continue
        if step.applies_to(facts):
            return i, step, step.variant_for(facts)
    return None


@dataclass(frozen=True)
class Change:
    """A planned change to one enrollment, applied in bulk by :func:`apply_changes`."""

    enrollment_id: int
    step_index: int
    next_due_at: datetime | None
    status: str = ACTIVE


def apply_changes(conn: Connection, changes: list[Change], now: datetime) -> None:
    """One ``UPDATE … FROM`` for a whole planning batch (per-row statements dominate otherwise)."""
    if not changes:
        return
    c = enrollments.c
    source = rows_table(
        conn,
        [c.id, c.step_index, c.next_due_at, c.status],
        ((ch.enrollment_id, ch.step_index, ch.next_due_at, ch.status) for ch in changes),
        "changes",
    )
    conn.execute(
        update(enrollments)
        .where(c.id == source.c.id)
        .values(
            step_index=source.c.step_index,
            next_due_at=source.c.next_due_at,
            status=source.c.status,
            updated_at=now,
        )
    )


def after_planning(
    campaign: Campaign, enrollment_id: int, planned_index: int, now: datetime
) -> Change:
    """The change that records step ``planned_index`` as planned: schedule the next or complete."""
    following = planned_index + 1
    if following >= len(campaign.steps):
        return Change(enrollment_id, following, None, COMPLETED)
    delay = max(campaign.steps[following].delay_days, 0)
    return Change(enrollment_id, following, now + timedelta(days=delay))


def active_count(conn: Connection, campaign_id: str) -> int:
    """How many people are still going through ``campaign_id`` (what retiring it stops)."""
    e = enrollments
    return int(
        conn.execute(
            select(func.count())
            .select_from(e)
            .where(e.c.campaign_id == campaign_id, e.c.status == ACTIVE)
        ).scalar_one()
    )
