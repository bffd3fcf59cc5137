"""The JSON bodies of the versioned API (requests and answers), as FastAPI describes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from campaigns.definitions import GOAL_PATTERN
from subscribers.addresses import InvalidAddress, normalize
from subscribers.symptoms import BY_CODE

PUBLIC_ID = r"^[0-9a-f]{32}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _address(v: str) -> str:
    if "\x00" in v:
        raise ValueError("This contains a character we can't accept (a NUL).")
    try:
        email, _ = normalize(v)
    except InvalidAddress:
        raise ValueError("not an email address (it should look like name@example.com)") from None
    return email


def _known_codes(v: list[str] | None) -> list[str] | None:
    if v is None:
        return v
    unknown = sorted({c for c in v if c not in BY_CODE})
    if unknown:
        raise ValueError(f"unknown symptom code {unknown[0][:64]!r}")
    return sorted(set(v))


class Lookup(_In):
    email: str = Field(
        max_length=320,
        description="The person's email address.",
        json_schema_extra={"format": "email"},
    )

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        return _address(v)


class EventIn(_In):
    """One thing that happened to a person in another system. Name the person by ``email`` or
    by their ``subscriber_id``."""

    type: str = Field(
        pattern=GOAL_PATTERN,
        max_length=63,
        description="`booked`, `attended`, `discharged` or the clinic's own type.",
    )
    email: str | None = Field(default=None, max_length=320, json_schema_extra={"format": "email"})
    subscriber_id: str | None = Field(default=None, pattern=PUBLIC_ID)
    occurred_at: datetime | None = Field(
        default=None, description="When it happened (ISO 8601 with a zone); default: now."
    )

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return None if v is None else _address(v)

    @field_validator("occurred_at")
    @classmethod
    def _zone(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-01T10:00:00Z")
        return v


class ChangeIn(_In):
    """A change to a person's choices, made for them by another system."""

    symptoms: list[str] | None = Field(
        default=None,
        max_length=len(BY_CODE),
        description="Their symptom codes (replaces the list; reported warning signs stay).",
    )
    paused_until: datetime | None = Field(
        default=None, description="Pause campaign email until then (null: resume)."
    )

    @field_validator("symptoms")
    @classmethod
    def _codes(cls, v: list[str] | None) -> list[str] | None:
        return _known_codes(v)

    @field_validator("paused_until")
    @classmethod
    def _zone(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-01T10:00:00Z")
        return v


class EpisodeIn(_In):
    """A new episode of pain, reported for the person by another system."""

    symptoms: list[str] | None = Field(
        default=None,
        max_length=len(BY_CODE),
        description="The symptom codes of this episode (replaces the list; reported warning "
        "signs stay); omitted: the ones on record.",
    )

    @field_validator("symptoms")
    @classmethod
    def _codes(cls, v: list[str] | None) -> list[str] | None:
        return _known_codes(v)


class WebhookIn(_In):
    url: str = Field(max_length=2000, description="Where to post (https://…).")
    events: list[str] = Field(
        min_length=1, max_length=20, description="Event types (see docs/api.md), or `all`."
    )


class Episode(BaseModel):
    campaign_id: str
    episode: int = Field(description="1 for the first time through the series, then 2 …")
    status: str = Field(description="active | completed | left | stopped; `ended`: an earlier one")
    started_at: datetime | None
    emails: list[str] = Field(description="The step ids accepted for sending in this episode.")


class Subscriber(BaseModel):
    id: str = Field(description="Opaque id: use it in URLs, never the address.")
    email: str
    first_name: str | None
    status: str = Field(description="unconfirmed | confirmed | unsubscribed")
    symptoms: list[str]
    timezone: str | None
    red_flag: bool
    arm_and_leg: bool = Field(
        description="Arm (or neck) and leg symptoms together: flagged for the clinic's staff to "
        "review the person's path."
    )
    confirmed_at: datetime | None
    paused_until: datetime | None
    series: list[str] = Field(description="The series the person is in now.")
    goals: list[str] = Field(description="The goal event types recorded for them.")
    episodes: list[Episode] = Field(
        description="Their history per series and episode of pain, oldest first."
    )


class NotYet(BaseModel):
    campaign_id: str
    earliest_at: datetime = Field(description="The earliest moment it may start again.")


class EpisodeOut(BaseModel):
    started: list[str] = Field(description="The series the person starts again, from week 1.")
    not_yet: list[NotYet] = Field(
        description="Series they finished or left too recently to start again yet."
    )
    subscriber: Subscriber


class SubscriberPage(BaseModel):
    items: list[Subscriber]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: end.")


class Accepted(BaseModel):
    status: str
    message: str | None = None
    urgent_care: str | None = None


class Done(BaseModel):
    status: str


class Step(BaseModel):
    id: str
    number: int
    until_goal: bool


class Campaign(BaseModel):
    id: str
    name: str
    status: str
    goal: str | None
    goal_follow_up: str | None
    goal_window_days: int = Field(
        description="A goal event within this many days of an email counts as its conversion."
    )
    reentry_after_days: int | None = Field(
        description="Days after a finished or left episode before a new one may start it "
        "again (null: never)."
    )
    steps: list[Step]


class CampaignPage(BaseModel):
    items: list[Campaign]
    next_cursor: str | None


class Webhook(BaseModel):
    id: str
    url: str
    events: list[str]
    active: bool
    created_at: datetime
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    last_status_code: int | None
    last_attempt_at: datetime | None


class NewWebhook(Webhook):
    secret: str = Field(description="The signing secret (whsec_…), shown this once.")


class WebhookPage(BaseModel):
    items: list[Webhook]
    next_cursor: str | None


class Delivery(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None
