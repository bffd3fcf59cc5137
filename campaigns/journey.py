"""A person's journey through a campaign: which emails they would get, week by week.

This replays the planner's rules on a calendar of whole days, without a database: a step is
skipped when its ``when`` rule does not match, the first matching variant is chosen, each step
waits its ``delay_days`` after the one before, and no two campaign emails are closer than the
cadence gap (:func:`campaigns.cadence.gap`: seven days, or the campaign's longer
``cadence_days``). Send windows only move an email within its day, so they do not change the
week; delivery delays (retries, outages) are not simulated.

Engagement can be simulated to preview branches (``clicked:`` / ``opened:`` / ``checkin:``
rules): a simulated click or open on a step of this campaign counts from the day that step's
email is sent (a rule can never see a click on an email not yet received); one on another
campaign's step counts from day 0; a check-in answer counts from day 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from campaigns.cadence import gap
from campaigns.definitions import Campaign
from campaigns.enrollment import next_step
from subscribers.activity import CLICK, OPEN, Activity
from subscribers.segments import Facts
from subscribers.symptoms import has_red_flag


@dataclass(frozen=True)
class JourneyEmail:
    week: int  # 1-based week after confirmation
    day: int  # days after confirmation
    number: int  # the step's file number (01-…)
    step: str
    variant: str
    subject: str  # as written, before rendering
    file: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Journey:
    campaign: str
    symptoms: tuple[str, ...]
    emails: tuple[JourneyEmail, ...]
    # Why there is no journey at all: "red_flag", "audience", or None.
    excluded: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "symptoms": list(self.symptoms),
            "excluded": self.excluded,
            "emails": [e.as_dict() for e in self.emails],
        }


@dataclass(frozen=True)
class Engagement:
    """Simulated behaviour: (campaign, step) pairs clicked or opened, and a check-in answer."""

    clicked: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    opened: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    checkin: str | None = None

    def activity(self, campaign_id: str, received: set[str]) -> Activity:
        """What the person has done by now, given the steps of ``campaign_id`` received."""
        done = {
            (kind, c, s)
            for kind, pairs in ((CLICK, self.clicked), (OPEN, self.opened))
            for c, s in pairs
            if c != campaign_id or s in received
        }
        return Activity(
            done=frozenset(done),
            last_checkin=self.checkin,
            checkins=frozenset({self.checkin} if self.checkin else ()),
        )


NO_ENGAGEMENT = Engagement()


def journey(
    campaign: Campaign, symptoms: frozenset[str], engagement: Engagement = NO_ENGAGEMENT
) -> Journey:
    """The emails someone who confirmed on day 0 with ``symptoms`` would receive."""
    codes = tuple(sorted(symptoms))
    if has_red_flag(symptoms):
        return Journey(campaign.id, codes, (), excluded="red_flag")
    if not campaign.meta.audience.matches(Facts(symptoms=symptoms)):
        return Journey(campaign.id, codes, (), excluded="audience")
    emails: list[JourneyEmail] = []
    received: set[str] = set()
    day, index, last = 0, 0, None
    gap_days = gap(campaign).days
    while index < len(campaign.steps):
        if last is not None and day < last + gap_days:
            day = last + gap_days
        facts = Facts(
            symptoms=symptoms,
            subscribed_days=day,
            activity=engagement.activity(campaign.id, received),
        )
        found = next_step(campaign, index, facts)
        if found is None:
            break
        i, step, variant = found
        emails.append(
            JourneyEmail(
                week=day // 7 + 1,
                day=day,
                number=step.number,
                step=step.id,
                variant=variant.id,
                subject=variant.subject,
                file=variant.file,
            )
        )
        received.add(step.id)
        last = day
        index = i + 1
        if index < len(campaign.steps):
            day += campaign.steps[index].delay_days
    return Journey(campaign.id, codes, tuple(emails))
