"""Planning: turn due enrollments into pending rows in the send ledger.

Each due enrollment is either planned (a ledger row is written and the enrollment advances),
postponed to a precise later time (the cadence rule of :mod:`campaigns.cadence`: send window,
closed days, weekly cap, an email still in flight; or a pause), or finished. Postponing to an
exact time keeps every tick O(due): nothing is re-read until it is due.

Planning never moves the weekly cap: the ledger does, when the provider accepts an email.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from campaigns import enrollment, goals, ledger
from campaigns.cadence import Cadence, Slot
from campaigns.ledger import CAMPAIGN
from campaigns.loader import Catalog
from campaigns.tables import COMPLETED, LEFT, STOPPED
from engagement import complaints, sunset
from subscribers import store

PAUSED_CAMPAIGN_RECHECK = timedelta(hours=1)
ONE_OFF_FIRST = timedelta(minutes=1)  # a series email due with a broadcast waits this long
SUNSET_RECHECK = timedelta(hours=6)  # a dormant person's "keep me" waits at most this long
BATCH = 1000


@dataclass
class PlanReport:
    planned: int = 0
    postponed: int = 0
    finished: int = 0


@dataclass
class PlanBatch:
    """Decisions for one planning batch, written with a few executemany statements."""

    changes: list[enrollment.Change] = field(default_factory=list)
    sends: list[dict[str, object]] = field(default_factory=list)
    # People with a campaign email planned but not yet accepted, with when it is due: the next
    # waits for its acceptance (planned in this batch too, so two never go out together).
    in_flight: dict[int, datetime] = field(default_factory=dict)
    # People with a broadcast due now: their series email waits a minute, for the broadcast.
    yield_to_one_off: set[int] = field(default_factory=set)
    # List health, read once per batch: the complaint pause and the sunset-paused people.
    complaint_pause: bool = False
    sunset: set[int] = field(default_factory=set)
    # When each person last reached each goal event (campaigns.goals): booking steps are
    # skipped when it happened in the enrollment's current episode.
    goals: dict[int, dict[str, datetime]] = field(default_factory=dict)
    # The cadence rule's latest answer (app.upcoming explains a postponement with it).
    slot: Slot | None = None

    def flush(self, conn: Connection, now: datetime) -> None:
        ledger.plan(conn, self.sends)
        enrollment.apply_changes(conn, self.changes, now)


class Planner:
    def __init__(self, catalog: Catalog, cadence: Cadence) -> None:
        self.catalog = catalog
        self.cadence = cadence

    def plan_batch(
        self, conn: Connection, now: datetime, after: tuple[datetime, int] | None
    ) -> tuple[PlanReport, tuple[datetime, int] | None]:
        """Plan one keyset batch after ``after`` (None: from the start); returns the report and
        the last (next_due_at, id) seen (None when done)."""
        report = PlanReport()
        # List health: spam complaints over the limit pause all campaign email (rows already
        # in the ledger wait too); the sunset policy pauses dormant people until "keep me".
        complaint_pause = complaints.is_paused(conn)
        if complaint_pause and after is None:
            complaints.hold_campaign_sends(conn, now, now + PAUSED_CAMPAIGN_RECHECK)
        due = enrollment.due_batch(conn, now, after, BATCH)
        if not due:
            return report, None
        self.catalog.preload(conn, {d.campaign_id for d in due})  # broadcasts, read in this txn
        people = store.profiles(conn, {d.subscriber_id for d in due})
        batch = PlanBatch(
            in_flight=ledger.campaign_in_flight(conn, people),
            yield_to_one_off=enrollment.one_offs_due(conn, people, now),
            complaint_pause=complaint_pause,
            sunset=sunset.paused_among(conn, set(people)),
            goals=goals.latest_among(conn, self._with_goals(due)),
        )
        for d in due:
            self.plan_one(d, people.get(d.subscriber_id), now, report, batch)
        batch.flush(conn, now)
        return report, (due[-1].next_due_at, due[-1].enrollment_id)

    def _with_goals(self, due: list[enrollment.Due]) -> set[int]:
        """The people in ``due`` whose campaign names a goal (only their events are read)."""
        out = set()
        for d in due:
            campaign = self.catalog.get(d.campaign_id)
            if campaign is not None and campaign.meta.goal:
                out.add(d.subscriber_id)
        return out

    def plan_one(
        self,
        d: enrollment.Due,
        person: store.Profile | None,
        now: datetime,
        report: PlanReport,
        batch: PlanBatch,
    ) -> None:
        def postpone(until: datetime) -> None:
            batch.changes.append(enrollment.Change(d.enrollment_id, d.step_index, until))
            report.postponed += 1

        def finish(status: str) -> None:
            batch.changes.append(enrollment.Change(d.enrollment_id, d.step_index, None, status))
            report.finished += 1

        campaign = self.catalog.get(d.campaign_id)
        if person is None or campaign is None or campaign.meta.status == "archived":
            return finish(LEFT)
        if person.status != store.CONFIRMED or person.red_flag:
            # Stopped, not left: a series resumes if the person opts in and confirms again.
            return finish(LEFT if campaign.one_off else STOPPED)
        # Draft, paused or awaiting a clinician's approval: look again later, cheaply (an
        # approval makes its enrollments due at once: campaigns.enrollment.wake).
        if not campaign.active or campaign.held:
            return postpone(now + PAUSED_CAMPAIGN_RECHECK)
        if batch.complaint_pause:  # until staff run `clinicmail health resume`
            return postpone(now + PAUSED_CAMPAIGN_RECHECK)
        if person.id in batch.sunset:
            return finish(LEFT) if campaign.one_off else postpone(now + SUNSET_RECHECK)
        if person.paused_until and person.paused_until > now:
            # A one-off broadcast is skipped, not caught up after the pause.
            return finish(LEFT) if campaign.one_off else postpone(person.paused_until)
        slot = self.cadence.earliest(
            now,
            campaign,
            zone=person.timezone,
            last_accepted=person.last_campaign_send_at,
            in_flight_from=batch.in_flight.get(person.id),
        )
        batch.slot = slot
        if slot.reason in ("weekly_cap", "in_flight"):
            return postpone(slot.at)
        if not campaign.one_off and person.id in batch.yield_to_one_off:
            return postpone(now + ONE_OFF_FIRST)
        if slot.reason is not None:  # outside the window, a quiet day or a holiday, locally
            return postpone(slot.at)
        goal = campaign.meta.goal
        reached_at = batch.goals.get(person.id, {}).get(goal) if goal is not None else None
        found = enrollment.next_step(
            campaign,
            d.step_index,
            person.facts(now),
            goal_reached=reached_at is not None
            and (d.episode_started_at is None or reached_at >= d.episode_started_at),
        )
        if found is None:
            return finish(COMPLETED)
        index, step, variant = found
        batch.sends.append(
            ledger.new_row(
                subscriber_id=person.id,
                campaign_id=campaign.id,
                step_id=step.id,
                variant_id=variant.id,
                kind=CAMPAIGN,
                now=now,
                content_version=campaign.version_id,
                episode=d.episode,
            )
        )
        batch.in_flight[person.id] = now
        batch.changes.append(enrollment.after_planning(campaign, d.enrollment_id, index, now))
        report.planned += 1
        return None
