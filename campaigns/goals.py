"""Goals: what the clinic's other systems report about a person (``booked``, ``attended``,
``discharged`` or a custom type), and what it does to the series they are in.

A campaign names its goal (``goal: booked`` in campaign.yaml). Once a person's goal event is
recorded, the planner skips that campaign's booking steps (``until_goal``) for them from the
next tick on, whatever was already due; a campaign with ``goal_follow_up`` ends for them
instead and they enter the named series. Every event is kept (the person's export shows them)
and counted per person, not per event, in the conversion statistics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from campaigns import ledger
from campaigns.definitions import Campaign
from campaigns.ledger import CAMPAIGN, SENT, sends
from campaigns.loader import Catalog
from campaigns.tables import ACTIVE, COMPLETED, enrollments, goal_events
from storage.bulk import in_values
from storage.sql import dialect_insert

BUILT_IN = ("booked", "attended", "discharged")


@dataclass(frozen=True)
class Reached:
    """What one recorded event did: the series whose goal it is, and those it moved the
    person out of (into their follow-up)."""

    campaign_ids: tuple[str, ...]
    moved: tuple[tuple[str, str], ...]  # (from campaign, to follow-up)


def record(
    conn: Connection,
    catalog: Catalog,
    subscriber_id: int,
    event_type: str,
    *,
    occurred_at: datetime,
    now: datetime,
    source: str,
) -> Reached:
    """Store one event for the person and apply it to the series they are in."""
    conn.execute(
        insert(goal_events).values(
            subscriber_id=subscriber_id,
            type=event_type,
            occurred_at=occurred_at,
            received_at=now,
            source=source[:64],
        )
    )
    in_series = conn.execute(
        select(enrollments.c.campaign_id).where(
            enrollments.c.subscriber_id == subscriber_id, enrollments.c.status == ACTIVE
        )
    ).scalars()
    reached: list[str] = []
    moved: list[tuple[str, str]] = []
    for cid in in_series:
        campaign = catalog.get(cid)
        if campaign is None or campaign.meta.goal != event_type:
            continue
        reached.append(cid)
        # A booking email already planned but not yet sent (waiting for a retry) goes too.
        booking = [step.id for step in campaign.steps if step.until_goal]
        ledger.cancel_steps(conn, subscriber_id, cid, booking, f"goal {event_type} reached")
        follow_up = campaign.meta.goal_follow_up
        if follow_up and catalog.get(follow_up) is not None:
            _move(conn, subscriber_id, cid, follow_up, now)
            moved.append((cid, follow_up))
    return Reached(tuple(reached), tuple(moved))


def _move(conn: Connection, subscriber_id: int, from_id: str, to_id: str, now: datetime) -> None:
    conn.execute(
        update(enrollments)
        .where(
            enrollments.c.subscriber_id == subscriber_id,
            enrollments.c.campaign_id == from_id,
            enrollments.c.status == ACTIVE,
        )
        .values(status=COMPLETED, next_due_at=None, updated_at=now)
    )
    conn.execute(
        dialect_insert(conn, enrollments)
        .values(
            subscriber_id=subscriber_id,
            campaign_id=to_id,
            step_index=0,
            next_due_at=now,
            status=ACTIVE,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=[enrollments.c.subscriber_id, enrollments.c.campaign_id]
        )
    )


def reached_among(conn: Connection, subscriber_ids: Iterable[int]) -> dict[int, set[str]]:
    """The event types recorded for each of ``subscriber_ids`` (absent: none)."""
    ids = list(subscriber_ids)
    out: dict[int, set[str]] = {}
    if not ids:
        return out
    rows = conn.execute(
        select(goal_events.c.subscriber_id, goal_events.c.type)
        .where(in_values(conn, goal_events.c.subscriber_id, ids))
        .distinct()
    )
    for sid, kind in rows:
        out.setdefault(sid, set()).add(kind)
    return out


def events_of(conn: Connection, subscriber_id: int) -> list[dict[str, object]]:
    """A person's events, oldest first (their export)."""
    rows = conn.execute(
        select(
            goal_events.c.type,
            goal_events.c.occurred_at,
            goal_events.c.received_at,
            goal_events.c.source,
        )
        .where(goal_events.c.subscriber_id == subscriber_id)
        .order_by(goal_events.c.id)
    )
    return [dict(r._mapping) for r in rows]


def conversions(conn: Connection, campaign: Campaign) -> dict[str, object] | None:
    """The campaign's goal conversion per step, counted in people (not events): ``people`` got
    the step; ``converted`` reached the goal with this step as the last of the campaign's
    emails accepted before it (each person is counted once, at one step). None without a goal.
    """
    goal = campaign.meta.goal
    if goal is None:
        return None
    firsts: dict[int, datetime] = {
        sid: at
        for sid, at in conn.execute(
            select(goal_events.c.subscriber_id, func.min(goal_events.c.occurred_at))
            .where(goal_events.c.type == goal)
            .group_by(goal_events.c.subscriber_id)
        )
    }
    people: dict[str, set[int]] = {}
    last_before: dict[int, tuple[datetime, str]] = {}
    rows = conn.execute(
        select(sends.c.subscriber_id, sends.c.step_id, sends.c.sent_at).where(
            sends.c.campaign_id == campaign.id,
            sends.c.kind == CAMPAIGN,
            sends.c.status == SENT,
            sends.c.sent_at.is_not(None),
        )
    )
    for sid, step_id, sent_at in rows:
        people.setdefault(step_id, set()).add(sid)
        first = firsts.get(sid)
        later = sid not in last_before or last_before[sid][0] < sent_at
        if first is not None and sent_at <= first and later:
            last_before[sid] = (sent_at, step_id)
    converted: dict[str, int] = {}
    for _at, step_id in last_before.values():
        converted[step_id] = converted.get(step_id, 0) + 1
    steps = []
    for step in campaign.steps:
        got = len(people.get(step.id, ()))
        won = converted.get(step.id, 0)
        steps.append(
            {
                "step": step.id,
                "people": got,
                "converted": won,
                "rate": round(won / got, 4) if got else 0.0,
            }
        )
    return {"id": campaign.id, "goal": goal, "converted": len(last_before), "steps": steps}
