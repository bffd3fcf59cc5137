"""What comes next for one person: which email, when, and why.

The answer comes from the planner's own decision (:meth:`Planner.plan_one`), replayed without
writing anything: each active enrollment is asked "what would you do at the moment you are
due?"; a postponement is followed to the moment it names and asked again, until an email is
planned or the series finishes. So the console can never disagree with what the tick will do
(short of new events, or the person changing their choices, in between). This is the only
place that replays the planner; keep it that way when the rules move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from campaigns import enrollment, ledger
from campaigns.cadence import Slot, gap
from campaigns.ledger_reads import queued_for
from campaigns.tables import ACTIVE, enrollments
from engagement import complaints, sunset
from scheduler.planner import PlanBatch, Planner, PlanReport
from subscribers import store

MAX_HOPS = 12  # postponements followed before giving up (window → cap → window … is 3 or 4)


@dataclass(frozen=True)
class Upcoming:
    campaign_id: str
    step_id: str | None  # None: nothing more in this series for this person
    variant_id: str | None
    at: datetime | None  # when it would be planned (UTC); None when nothing is coming
    why: str

    def as_dict(self) -> dict[str, object]:
        return {
            "campaign_id": self.campaign_id,
            "step_id": self.step_id,
            "variant_id": self.variant_id,
            "at": self.at.isoformat() if self.at else None,
            "why": self.why,
        }


def _reason(person: store.Profile, slot: Slot, days: int, until: datetime) -> str:
    """Why the planner postponed to ``until``, in words (``slot``: the cadence rule's answer)."""
    if person.paused_until is not None and until == person.paused_until:
        return "campaign email is paused for this person until then"
    if slot.reason == "weekly_cap":
        return (
            f"at most one campaign email in any {days} days, counted from when the provider "
            "accepted the last one"
        )
    if slot.reason == "in_flight":
        return f"an earlier campaign email is not yet accepted; this one goes {days} days after it"
    return "the next open moment of the send window (or open day) in their time zone"


def _queued(conn: Connection, subscriber_id: int) -> list[Upcoming]:
    rows = queued_for(conn, subscriber_id)
    return [
        Upcoming(r.campaign_id, r.step_id, r.variant_id, r.next_attempt_at, "already queued")
        for r in rows
    ]


def upcoming(
    conn: Connection, planner: Planner, subscriber_id: int, now: datetime
) -> list[Upcoming]:
    """The emails queued for the person, then the next one from each series they are in."""
    found = _queued(conn, subscriber_id)
    person = store.profiles(conn, [subscriber_id]).get(subscriber_id)
    if person is None:
        return found
    rows = conn.execute(
        select(
            enrollments.c.id,
            enrollments.c.campaign_id,
            enrollments.c.step_index,
            enrollments.c.next_due_at,
        )
        .where(enrollments.c.subscriber_id == subscriber_id, enrollments.c.status == ACTIVE)
        .order_by(enrollments.c.id)
    ).all()
    planner.catalog.preload(conn, {r.campaign_id for r in rows})
    paused_list = complaints.is_paused(conn)
    dormant = sunset.paused_among(conn, {subscriber_id})
    in_flight = ledger.campaign_in_flight(conn, {subscriber_id}).get(subscriber_id)
    for r in rows:
        found.append(
            _follow(
                planner,
                person,
                r.id,
                r.campaign_id,
                r.step_index,
                r.next_due_at,
                now,
                paused_list,
                dormant,
                in_flight,
            )
        )
    return found


def _follow(
    planner: Planner,
    person: store.Profile,
    enrollment_id: int,
    campaign_id: str,
    step_index: int,
    due_at: datetime | None,
    now: datetime,
    paused_list: bool,
    dormant: set[int],
    in_flight: datetime | None,
) -> Upcoming:
    at = max(due_at or now, now)
    last = person.last_campaign_send_at
    reasons = ["the series waits the step's delay" if at > now else "due now"]
    if person.status != store.CONFIRMED or person.red_flag:
        why_not = "reported a warning sign" if person.red_flag else f"status is {person.status}"
        return Upcoming(campaign_id, None, None, None, f"no campaign email: {why_not}")
    if paused_list:
        return Upcoming(
            campaign_id,
            None,
            None,
            None,
            "all campaign email is paused for spam complaints until ops resume it",
        )
    if person.id in dormant:
        return Upcoming(
            campaign_id, None, None, None, "paused by the sunset policy until they click “keep me”"
        )
    if at > now:
        # A due time can itself be an earlier postponement (the send window, the weekly
        # limit): when the rule alone holds the email until then, say so, not "the delay".
        campaign = planner.catalog.get(campaign_id)
        slot = planner.cadence.earliest(
            now, campaign, zone=person.timezone, last_accepted=last, in_flight_from=in_flight
        )
        if slot.reason is not None and slot.at >= at:
            reasons = [_reason(person, slot, gap(campaign).days, at)]
    for _ in range(MAX_HOPS):
        batch = PlanBatch(
            in_flight={person.id: in_flight} if in_flight is not None else {},
            yield_to_one_off=set(),
            complaint_pause=False,
            sunset=set(),
        )
        d = enrollment.Due(enrollment_id, person.id, campaign_id, step_index, at)
        planner.plan_one(d, person, at, PlanReport(), batch)
        if batch.sends:
            planned = batch.sends[0]
            return Upcoming(
                campaign_id,
                str(planned["step_id"]),
                str(planned["variant_id"]),
                at,
                "; then ".join(reasons),
            )
        change = batch.changes[0] if batch.changes else None
        if change is None or change.next_due_at is None:
            return Upcoming(
                campaign_id, None, None, None, "nothing more in this series for this person"
            )
        campaign = planner.catalog.get(campaign_id)
        slot = batch.slot or planner.cadence.earliest(  # None: planning stopped before asking
            at, campaign, zone=person.timezone, last_accepted=last, in_flight_from=in_flight
        )
        reason = _reason(person, slot, gap(campaign).days, change.next_due_at)
        if reason not in reasons:
            reasons.append(reason)
        at = change.next_due_at
    return Upcoming(campaign_id, None, None, at, "; then ".join(reasons))
