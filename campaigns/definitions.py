"""The authoring format: a campaign is a folder.

``campaign.yaml`` holds the campaign (id, name, audience rule, cadence, status, review metadata);
each step is ``NN-slug.md`` with YAML front matter (subject, preheader, delay_days, an optional
``when`` rule, variants) and a Markdown body. A variant is ``NN-slug.VARIANT.md`` referenced from
the step's ``variants`` list; the first variant whose ``when`` matches wins.

Bodies are Markdown with Jinja2 expressions, run in a sandbox (templates/render.py):

- variables: ``{{ first_name }}`` (falls back to "there"), ``{{ clinic.name }}``,
  ``{{ clinic.address }}``, ``{{ clinic.booking_url }}``, ``{{ clinic.emergency_number }}``,
  ``{{ clinic.urgent_advice }}``; anything else is refused;
- structure: ``##`` section headings; the subject is shown as the headline; ``cta: book`` adds
  the one booking button after the body;
- filters: ``capitalize default e first join last length lower replace title trim truncate
  upper wordcount``; never ``safe`` (values are always escaped) or ``attr``;
- no raw HTML (it would show as text) and no attribute whose name starts with ``_``;
- every image needs alt text: ``![A person sitting upright at a desk](https://…)``.

``clinicmail campaigns validate`` reports each problem with its file and line, then runs the
content gate (campaigns/gate.py) on every email;
``clinicmail campaigns journey CAMPAIGN --symptoms …`` shows who gets which email when.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.headers import PREHEADER_MAX, SUBJECT_MAX, header_problem
from subscribers.segments import EVERYONE, Facts, Rule

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
STEP_FILE = re.compile(r"^(\d{2,3})-([a-z0-9][a-z0-9-]*)\.md$")
GOAL_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}$"
WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ReviewStatus = Literal[
    "not yet reviewed by a clinician at your clinic", "approved by a clinician at your clinic"
]
NOT_REVIEWED: ReviewStatus = "not yet reviewed by a clinician at your clinic"


class Review(_Model):
    """Governance a reader can check: the sources an email rests on (article titles or the
    guideline followed, never a file the project does not hold) and its honest review state."""

    sources: list[str] = Field(default_factory=list)
    # Approval itself happens in the staff console; files on disk say so honestly.
    status: ReviewStatus = NOT_REVIEWED
    reviewed_by: str = "unreviewed"
    reviewed_on: date | None = None


class VariantRef(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    when: Rule
    file: str


class VariantMeta(_Model):
    subject: str = Field(min_length=1)
    preheader: str = ""
    cta: Literal["book", "reply", "read", "try"] | None = None
    review: Review | None = None

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str) -> str:
        return _header(v, SUBJECT_MAX)

    @field_validator("preheader")
    @classmethod
    def _preheader(cls, v: str) -> str:
        return _header(v, PREHEADER_MAX)


def _header(value: str, max_length: int) -> str:
    """A header field's text is refused here, where it is authored (core.headers)."""
    problem = header_problem(value, max_length=max_length)
    if problem:
        raise ValueError(problem)
    return value


def unique_variants(v: list[VariantRef]) -> list[VariantRef]:
    """Variant ids are unique within a step and never the reserved ``default``."""
    ids = [x.id for x in v]
    dupes = sorted({i for i in ids if ids.count(i) > 1} | ({"default"} & set(ids)))
    if dupes:
        raise ValueError(f"variant ids must be unique and not 'default': {', '.join(dupes)}")
    return v


class StepMeta(VariantMeta):
    delay_days: int = Field(default=7, ge=0, le=365)
    when: Rule | None = None
    # Adds the one-click check-in ("How is your pain this week? Better / About the same /
    # Worse") to this step and all its variants; answers feed the ``checkin:`` segment rule.
    checkin: bool = False
    # A booking step: skipped once the person reached the campaign's goal (``goal``). When not
    # given, a step whose call to action is booking (``cta: book``) is one.
    until_goal: bool | None = None
    variants: list[VariantRef] = Field(default_factory=list)

    @field_validator("variants")
    @classmethod
    def _unique(cls, v: list[VariantRef]) -> list[VariantRef]:
        return unique_variants(v)


class CampaignMeta(_Model):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    description: str = ""
    status: Literal["draft", "active", "paused", "archived"] = "draft"
    # The least gap before this campaign's emails; the weekly cap makes seven days the floor
    # (campaigns/cadence.py ``gap``), so a smaller value changes nothing.
    cadence_days: int = Field(default=7, ge=1, le=365)
    audience: Rule = EVERYONE
    send_window: str | None = None
    review: Review = Field(default_factory=Review)
    # The event that means this series did its job (``booked``, ``attended``, ``discharged`` or
    # a clinic's own type, posted to ``POST /api/v1/events``): once it arrives for a person,
    # they get none of the booking steps (``until_goal``) that follow, from the next tick.
    goal: str | None = Field(default=None, pattern=GOAL_PATTERN)
    # Optionally, the series the person moves to when the goal arrives (this one then ends).
    goal_follow_up: str | None = Field(default=None, pattern=ID_PATTERN)
    # How long after the goal event an email may still count as the one that led to it (the
    # conversion figures of ``clinicmail stats``: who reached the goal within this many days
    # of which email).
    goal_window_days: int = Field(default=30, ge=1, le=365)
    # Re-entry for a new episode: a person who finished or left this series starts it again
    # from its first step when they report a new episode of pain (the preference centre, or
    # ``POST /api/v1/subscribers/{id}/episodes``), once at least this many days passed since
    # their last episode of it ended. None: the series is never started again.
    reentry_after_days: int | None = Field(default=None, ge=0, le=3650)

    @field_validator("send_window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is None:
            return v
        m = WINDOW.match(v)
        if not m:
            raise ValueError("must be local hours like 08:00-20:00 (24-hour HH:MM-HH:MM)")
        start, end = (int(m[1]), int(m[2])), (int(m[3]), int(m[4]))
        if start >= end or end > (24, 0):
            raise ValueError("the start must be before the end, e.g. 08:00-20:00")
        return v


class Variant(BaseModel):
    """One renderable body: a step's default or one of its variants."""

    model_config = ConfigDict(frozen=True)
    id: str
    subject: str
    preheader: str
    body: str
    file: str
    body_line: int  # line of the body's first line in ``file`` (for error messages)
    when: Rule | None = None
    checkin: bool = False  # the step's ``checkin`` setting, shared by all its variants
    cta: str | None = None  # "book" shows the booking button after the body
    review: Review | None = None  # this email's own sources and review state


class Step(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    number: int
    delay_days: int
    when: Rule | None
    default: Variant
    variants: tuple[Variant, ...] = ()
    until_goal: bool = False  # a booking step: skipped once the campaign's goal is reached

    def applies_to(self, facts: Facts) -> bool:
        return self.when is None or self.when.matches(facts)

    def variant_for(self, facts: Facts) -> Variant:
        for v in self.variants:
            if v.when is not None and v.when.matches(facts):
                return v
        return self.default

    def variant(self, variant_id: str) -> Variant:
        if variant_id == "default":
            return self.default
        for v in self.variants:
            if v.id == variant_id:
                return v
        raise KeyError(variant_id)


class Campaign(BaseModel):
    model_config = ConfigDict(frozen=True)
    meta: CampaignMeta
    steps: tuple[Step, ...]
    # A one-off broadcast (campaigns/broadcasts.py), not a library series: it never waits out a
    # subscriber's pause, is never offered in the preference centre, and is never resumed.
    one_off: bool = False
    # A broadcast staff marked time-sensitive: it goes at its time whatever the weekly cap says
    # (campaigns/cadence.py), and still counts toward it.
    time_sensitive: bool = False
    # Which stored content version this is, when the content comes from the database; the
    # ledger records it on each send (``sends.content_version``).
    version_id: str | None = None
    # Live content no clinician of this installation has approved yet, loaded where the
    # transport reaches patients (sendgrid, smtp): people are enrolled, but the planner plans
    # nothing from it until a clinician approves it (campaigns.review).
    held: bool = False

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def active(self) -> bool:
        return self.meta.status == "active"

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def step_index(self, step_id: str) -> int:
        for i, s in enumerate(self.steps):
            if s.id == step_id:
                return i
        raise KeyError(step_id)
