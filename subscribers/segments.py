"""Segment rules: a small rule tree staff write in YAML (``all`` / ``any`` / ``not`` / ``has`` …).

Each rule is a one-key mapping, for example::

    all:
      - has_any: [sciatica, disc_problem]
      - not: {in_group: red_flags}

``Rule.matches(facts)`` evaluates it in Python (previews, planning); :func:`compile_rule` turns
the same rule into a SQL condition over the ``subscribers`` table (counting or selecting a segment
without loading everyone). A property test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, field_validator
from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, true

from subscribers.activity import CHECKIN, CLICK, NOTHING, OPEN, Activity
from subscribers.symptoms import ARM_CODES, BY_CODE, GROUP_IDS, LEG_CODES, codes_in_group
from subscribers.tables import subscriber_activity, subscriber_symptoms, subscribers
from templates.checkin import CheckinAnswer


@dataclass(frozen=True)
class Facts:
    """What a rule may look at: plain data about one subscriber."""

    symptoms: frozenset[str] = field(default_factory=frozenset)
    timezone: str | None = None
    subscribed_days: int = 0
    activity: Activity = NOTHING


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def matches(self, facts: Facts) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_code(code: str) -> str:
    if code not in BY_CODE:
        raise ValueError(f"unknown symptom code {code!r}")
    return code


class Has(_Rule):
    has: str

    @field_validator("has")
    @classmethod
    def _code(cls, v: str) -> str:
        return _check_code(v)

    def matches(self, facts: Facts) -> bool:
        return self.has in facts.symptoms


class HasAny(_Rule):
    has_any: list[str] = Field(min_length=1)

    @field_validator("has_any")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return [_check_code(c) for c in v]

    def matches(self, facts: Facts) -> bool:
        return any(c in facts.symptoms for c in self.has_any)


class HasAll(_Rule):
    has_all: list[str] = Field(min_length=1)

    @field_validator("has_all")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return [_check_code(c) for c in v]

    def matches(self, facts: Facts) -> bool:
        return all(c in facts.symptoms for c in self.has_all)


class InGroup(_Rule):
    in_group: str

    @field_validator("in_group")
    @classmethod
    def _group(cls, v: str) -> str:
        if v not in GROUP_IDS:
            raise ValueError(f"unknown symptom group {v!r}; known: {', '.join(sorted(GROUP_IDS))}")
        return v

    def matches(self, facts: Facts) -> bool:
        return bool(codes_in_group(self.in_group) & facts.symptoms)


class SubscribedDays(_Rule):
    subscribed_days_gte: int = Field(ge=0)

    def matches(self, facts: Facts) -> bool:
        return facts.subscribed_days >= self.subscribed_days_gte


class TimezoneIs(_Rule):
    timezone: str

    def matches(self, facts: Facts) -> bool:
        return facts.timezone == self.timezone


def _split_target(value: str) -> tuple[str, str | None]:
    campaign, _, step = value.partition("/")
    return campaign, (step or None)


def _check_target(value: str) -> str:
    campaign, step = _split_target(value.strip())
    if not campaign or "/" in (step or ""):
        raise ValueError(
            f"{value!r} is not a step reference; write CAMPAIGN or CAMPAIGN/STEP, "
            "for example spasm-education/the-slow-build-up"
        )
    return value.strip()


class _Engaged(_Rule):
    """Shared by ``clicked`` and ``opened``: the person did it for that step (or any step of
    that campaign when no step is named). Human engagement only."""

    activity_kind: ClassVar[str] = ""

    def target(self) -> tuple[str, str | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def matches(self, facts: Facts) -> bool:
        campaign, step = self.target()
        return facts.activity.did(self.activity_kind, campaign, step)


class Clicked(_Engaged):
    clicked: str
    activity_kind: ClassVar[str] = CLICK

    @field_validator("clicked")
    @classmethod
    def _valid(cls, v: str) -> str:
        return _check_target(v)

    def target(self) -> tuple[str, str | None]:
        return _split_target(self.clicked)


class Opened(_Engaged):
    opened: str
    activity_kind: ClassVar[str] = OPEN

    @field_validator("opened")
    @classmethod
    def _valid(cls, v: str) -> str:
        return _check_target(v)

    def target(self) -> tuple[str, str | None]:
        return _split_target(self.opened)


class CheckinIs(_Rule):
    """The person's latest check-in answer ("How is your back this week?")."""

    checkin: CheckinAnswer

    def matches(self, facts: Facts) -> bool:
        return facts.activity.last_checkin == self.checkin


class CheckinEver(_Rule):
    """Any check-in answer on record, not only the latest: ``checkin_ever: worse`` holds for a
    person who said "worse" about any email, even if a later email's answer was "better"."""

    checkin_ever: CheckinAnswer

    def matches(self, facts: Facts) -> bool:
        return self.checkin_ever in facts.activity.checkins


class All(_Rule):
    all: list[Rule]

    def matches(self, facts: Facts) -> bool:
        return all(r.matches(facts) for r in self.all)


class AnyOf(_Rule):
    any: list[Rule] = Field(min_length=1)

    def matches(self, facts: Facts) -> bool:
        return any(r.matches(facts) for r in self.any)


class Not(_Rule):
    not_: Rule = Field(alias="not")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def matches(self, facts: Facts) -> bool:
        return not self.not_.matches(facts)


_TAGS: dict[str, Any] = {
    "has": Has,
    "has_any": HasAny,
    "has_all": HasAll,
    "in_group": InGroup,
    "subscribed_days_gte": SubscribedDays,
    "timezone": TimezoneIs,
    "clicked": Clicked,
    "opened": Opened,
    "checkin": CheckinIs,
    "checkin_ever": CheckinEver,
    "all": All,
    "any": AnyOf,
    "not": Not,
}


def _rule_kind(value: object) -> str | None:
    """The rule's kind is its single key; anything else gets one clear error."""
    if isinstance(value, dict):
        keys = [k for k in value if k in _TAGS]
        return keys[0] if len(keys) == 1 and len(value) == 1 else None
    if isinstance(value, _Rule):
        return next(k for k, m in _TAGS.items() if isinstance(value, m))
    return None


Rule = Annotated[
    Union[  # noqa: UP007 - Tag annotations need the explicit Union
        Annotated[Has, Tag("has")],
        Annotated[HasAny, Tag("has_any")],
        Annotated[HasAll, Tag("has_all")],
        Annotated[InGroup, Tag("in_group")],
        Annotated[SubscribedDays, Tag("subscribed_days_gte")],
        Annotated[TimezoneIs, Tag("timezone")],
        Annotated[Clicked, Tag("clicked")],
        Annotated[Opened, Tag("opened")],
        Annotated[CheckinIs, Tag("checkin")],
        Annotated[CheckinEver, Tag("checkin_ever")],
        Annotated[All, Tag("all")],
        Annotated[AnyOf, Tag("any")],
        Annotated[Not, Tag("not")],
    ],
    Discriminator(
        _rule_kind,
        custom_error_type="invalid_rule",
        custom_error_message=("a rule is a mapping with exactly one of: " + ", ".join(_TAGS)),
    ),
]

for _model in (All, AnyOf, Not):
    _model.model_rebuild()

RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)
EVERYONE = All(all=[])
# symptoms.arm_and_leg as a rule, so the console can count and list the flagged people in SQL.
ARM_AND_LEG = All(all=[HasAny(has_any=sorted(ARM_CODES)), HasAny(has_any=sorted(LEG_CODES))])


def parse_rule(data: object) -> Rule:
    """Validate a rule from YAML/JSON data; raises ``pydantic.ValidationError``."""
    return RULE_ADAPTER.validate_python(data)


def _has_one_of(codes: list[str] | frozenset[str]) -> ColumnElement[bool]:
    if not codes:
        return false()
    return exists(
        select(subscriber_symptoms.c.code).where(
            subscriber_symptoms.c.subscriber_id == subscribers.c.id,
            subscriber_symptoms.c.code.in_(sorted(codes)),
        )
    )


def compile_rule(rule: _Rule, *, now: datetime | None = None) -> ColumnElement[bool]:
    """The rule as a boolean SQL clause over ``subscribers`` (correlated to its symptoms).

    Selects exactly the rows whose :class:`Facts` ``rule.matches`` accepts. Every leaf is
    NULL-free (a missing zone or confirmation time is plainly false), so ``not`` stays exact
    under SQL's three-valued logic. ``now`` fixes "subscribed days" (default: the current time).
    """
    when = now or datetime.now(UTC)
    if isinstance(rule, Has):
        return _has_one_of([rule.has])
    if isinstance(rule, HasAny):
        return _has_one_of(rule.has_any)
    if isinstance(rule, HasAll):
        return and_(true(), *(_has_one_of([c]) for c in rule.has_all))
    if isinstance(rule, InGroup):
        return _has_one_of(codes_in_group(rule.in_group))
    if isinstance(rule, SubscribedDays):
        if rule.subscribed_days_gte <= 0:
            return true()  # Facts clamps days at 0, so everyone has at least 0
        cutoff = when - timedelta(days=rule.subscribed_days_gte)
        return and_(subscribers.c.confirmed_at.is_not(None), subscribers.c.confirmed_at <= cutoff)
    if isinstance(rule, TimezoneIs):
        return and_(subscribers.c.timezone.is_not(None), subscribers.c.timezone == rule.timezone)
    if isinstance(rule, _Engaged):
        campaign, step = rule.target()
        t = subscriber_activity
        conds = [t.c.subscriber_id == subscribers.c.id, t.c.kind == rule.activity_kind]
        conds.append(t.c.campaign_id == campaign)
        if step is not None:
            conds.append(t.c.step_id == step)
        return exists(select(t.c.id).where(*conds))
    if isinstance(rule, CheckinIs):
        t = subscriber_activity
        latest = (
            select(t.c.value)
            .where(t.c.subscriber_id == subscribers.c.id, t.c.kind == CHECKIN)
            .order_by(t.c.last_at.desc(), t.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        return func.coalesce(latest, "") == rule.checkin
    if isinstance(rule, CheckinEver):
        t = subscriber_activity
        return exists(
            select(t.c.id).where(
                t.c.subscriber_id == subscribers.c.id,
                t.c.kind == CHECKIN,
                t.c.value == rule.checkin_ever,
            )
        )
    if isinstance(rule, All):
        return and_(true(), *(compile_rule(r, now=when) for r in rule.all))
    if isinstance(rule, AnyOf):
        return or_(false(), *(compile_rule(r, now=when) for r in rule.any))
    if isinstance(rule, Not):
        return not_(compile_rule(rule.not_, now=when))
    raise TypeError(f"not a rule: {rule!r}")  # pragma: no cover
