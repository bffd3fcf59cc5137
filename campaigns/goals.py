"""Goals: what the clinic's other systems report about a person (``booked``, ``attended``,
``discharged`` or a custom type), and what it does to the series they are in.

A campaign names its goal (``goal: booked`` in campaign.yaml). Once a person's goal event is
recorded, the planner skips that campaign's booking steps (``until_goal``) for them from the
next tick on, whatever was already due; a campaign with ``goal_follow_up`` ends for them
instead and they enter the named series. Every event is kept (the person's export shows them)
and counted per person, not per event, in the conversion statistics (:func:`conversions`: who
reached the goal within ``goal_window_days`` of which email, per step and per symptom group).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, insert, select, update

from campaigns import ledger
from campaigns.definitions import Campaign
from campaigns.ledger_reads import campaign_sent_of
from campaigns.loader import Catalog
from campaigns.tables import ACTIVE, COMPLETED, enrollments, goal_events
from storage.bulk import in_values
from storage.sql import dialect_insert
from subscribers.symptoms import GROUPS, SYMPTOMS, codes_in_group
from subscribers.tables import subscriber_symptoms

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


def latest_among(conn: Connection, subscriber_ids: Iterable[int]) -> dict[int, dict[str, datetime]]:
    """For each of ``subscriber_ids``, when each event type last happened (absent: never).
    The planner compares it with the start of the person's episode: a goal reached in an
    earlier episode does not stop the booking steps of a new one."""
    ids = list(subscriber_ids)
    out: dict[int, dict[str, datetime]] = {}
    if not ids:
        return out
    rows = conn.execute(
        select(goal_events.c.subscriber_id, goal_events.c.type, func.max(goal_events.c.occurred_at))
        .where(in_values(conn, goal_events.c.subscriber_id, ids))
        .group_by(goal_events.c.subscriber_id, goal_events.c.type)
    )
    for sid, kind, at in rows:
        out.setdefault(sid, {})[kind] = at
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
    """The campaign's goal conversion, counted in people (never events), per step and per
    symptom group; None for a campaign without a goal.

    A person *converted* at a step when they reached the goal within ``goal_window_days`` of
    that step's email, and it was the last of the campaign's emails accepted before the goal
    event (last touch). Each person counts once per campaign, at their first such event, in
    whichever episode it came. ``people`` got at least one email of the step (or of the
    campaign, for a group); ``rate`` is ``converted / people``. Symptom groups are read from
    each person's current codes (a person with codes in two groups counts in both); only
    these aggregates leave this function.
    """
    goal = campaign.meta.goal
    if goal is None:
        return None
    window = timedelta(days=campaign.meta.goal_window_days)
    events: dict[int, list[datetime]] = {}
    for sid, at in conn.execute(
        select(goal_events.c.subscriber_id, goal_events.c.occurred_at)
        .where(goal_events.c.type == goal)
        .order_by(goal_events.c.occurred_at)
    ):
        events.setdefault(sid, []).append(at)
    got: dict[str, set[int]] = {}
    emails: dict[int, list[tuple[datetime, str]]] = {}
    for sid, step_id, sent_at in campaign_sent_of(conn, campaign.id):
        got.setdefault(step_id, set()).add(sid)
        emails.setdefault(sid, []).append((sent_at, step_id))
    converted_at: dict[int, str] = {}  # person → the step they converted at
    for sid, theirs in emails.items():
        theirs.sort()
        for at in events.get(sid, ()):
            before = [e for e in theirs if e[0] <= at]
            if before and at - before[-1][0] <= window:
                converted_at[sid] = before[-1][1]
                break
    steps = []
    for step in campaign.steps:
        people = got.get(step.id, set())
        won = sum(1 for sid in people if converted_at.get(sid) == step.id)
        steps.append(
            {"step": step.id, "people": len(people), "converted": won, **_rate(won, len(people))}
        )
    everyone = set(emails)
    return {
        "id": campaign.id,
        "goal": goal,
        "window_days": campaign.meta.goal_window_days,
        "people": len(everyone),
        "converted": len(converted_at),
        **_rate(len(converted_at), len(everyone)),
        "steps": steps,
        "symptom_groups": _by_group(conn, everyone, set(converted_at)),
    }


def _rate(won: int, people: int) -> dict[str, float]:
    return {"rate": round(won / people, 4) if people else 0.0}


def _by_group(conn: Connection, people: set[int], converted: set[int]) -> list[dict[str, object]]:
    """People and converted people per symptom group and code (current codes), every group
    and code listed (zeros too), red flags aside: nobody with one is in a series."""
    codes: dict[int, set[str]] = {}
    if people:
        for sid, code in conn.execute(
            select(subscriber_symptoms.c.subscriber_id, subscriber_symptoms.c.code).where(
                in_values(conn, subscriber_symptoms.c.subscriber_id, sorted(people))
            )
        ):
            codes.setdefault(sid, set()).add(code)
    out: list[dict[str, object]] = []
    for group in GROUPS:
        if group.id == "red_flags":
            continue
        in_group = codes_in_group(group.id)
        members = {sid for sid, theirs in codes.items() if theirs & in_group}
        won = len(members & converted)
        per_code = []
        for sym in SYMPTOMS:
            if sym.group != group.id:
                continue
            having = {sid for sid, theirs in codes.items() if sym.code in theirs}
            n = len(having & converted)
            per_code.append(
                {"code": sym.code, "people": len(having), "converted": n, **_rate(n, len(having))}
            )
        out.append(
            {
                "group": group.id,
                "label": group.label,
                "people": len(members),
                "converted": won,
                **_rate(won, len(members)),
                "codes": per_code,
            }
        )
    return out
