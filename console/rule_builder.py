"""Who a step (or a new campaign) is for, as form fields instead of YAML.

The builder offers a list of conditions joined by "all of" or "any of", each one a plain choice
(a symptom group, a symptom, a check-in answer, opened or clicked an earlier step) that can be
turned round ("not"). It writes the same segment rule data the YAML holds
(``subscribers.segments``); a rule it cannot show that way (nested groups, several symptoms in
one condition, time zones …) is left to the advanced (YAML) view and never rewritten.

A step's settings form (delay, check-in, audience) is merged into the step's YAML settings
three ways: only the fields the person changed in the form (compared with what the form showed
when the page was drawn) are written over the YAML, so an edit made in the advanced view in the
same save is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from console.words import rule
from core import yamltext
from subscribers.segments import parse_rule
from subscribers.symptoms import GROUPS, SYMPTOMS
from templates.checkin import CHOICES

# Condition kinds the builder offers, by the rule key each one writes.
LEAVES = ("in_group", "has", "checkin", "checkin_ever", "opened", "clicked")
SLOTS = 3  # empty condition rows offered after the ones in use
DELAY_MAX = 365


@dataclass(frozen=True)
class Condition:
    choice: str  # "KEY:VALUE", e.g. "in_group:red_flags"; "" for an unused row
    negate: bool = False


@dataclass
class Builder:
    """What the form shows (or what was posted)."""

    join: str = "all"
    conditions: list[Condition] = field(default_factory=list)
    representable: bool = True  # False: "this rule is edited in the advanced view"
    delay_days: str = "7"
    checkin: bool = False

    def rows(self) -> list[Condition]:
        """The conditions in use and a few empty rows to add more."""
        return [*self.conditions, *([Condition("")] * SLOTS)]

    def snapshot(self) -> str:
        """What the form showed, posted back so a save knows which fields the person changed."""
        rule = to_rule(self.join, self.conditions) if self.representable else "advanced"
        return yaml.safe_dump(
            {"delay_days": self.delay_days, "checkin": self.checkin, "rule": rule},
            sort_keys=True,
        )


def _leaf_choice(node: Any) -> str | None:
    if not isinstance(node, dict) or len(node) != 1:
        return None
    (key, value), *_ = node.items()
    if key in ("has_any", "has_all") and isinstance(value, list) and len(value) == 1:
        key, value = "has", value[0]
    if key not in LEAVES or not isinstance(value, str):
        return None
    return f"{key}:{value}"


def _condition(node: Any) -> Condition | None:
    if isinstance(node, dict) and set(node) == {"not"}:
        inner = _leaf_choice(node["not"])
        return Condition(inner, True) if inner else None
    choice = _leaf_choice(node)
    return Condition(choice) if choice else None


def from_rule(data: Any) -> tuple[str, list[Condition]] | None:
    """A rule (YAML data) as (join, conditions), or None when the builder cannot show it."""
    if data is None:
        return "all", []
    if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in ("all", "any"):
        join = next(iter(data))
        items = data[join]
        if not isinstance(items, list):
            return None
        found = [_condition(item) for item in items]
        if any(c is None for c in found):
            return None
        return join, [c for c in found if c is not None]
    single = _condition(data)
    return ("all", [single]) if single else None


def _leaf(choice: str) -> dict[str, Any]:
    key, _, value = choice.partition(":")
    return {key: value}


def to_rule(join: str, conditions: Sequence[Condition]) -> dict[str, Any] | None:
    """The rule data for the builder's conditions (None: everyone)."""
    nodes = [
        {"not": _leaf(c.choice)} if c.negate else _leaf(c.choice) for c in conditions if c.choice
    ]
    if not nodes:
        return None
    if len(nodes) == 1:
        return nodes[0]
    return {"any" if join == "any" else "all": nodes}


def options(
    campaign_id: str, earlier: Sequence[tuple[str, str]], shown: Sequence[Condition] = ()
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The choices, grouped as the form shows them: (group label, [(value, words)]).
    ``earlier`` lists (step id, title) of the steps before this one; a condition in use that
    names something else (another campaign's step) is offered too, so it is never lost."""
    out: list[tuple[str, list[tuple[str, str]]]] = [
        ("Symptom groups", [(f"in_group:{g.id}", f"a symptom in “{g.label}”") for g in GROUPS]),
        ("Symptoms", [(f"has:{s.code}", f"the symptom “{s.label}”") for s in SYMPTOMS]),
        (
            "Latest check-in answer",
            [(f"checkin:{a}", f"the latest check-in answer “{label}”") for a, label in CHOICES],
        ),
        (
            "Any check-in answer",
            [
                (f"checkin_ever:{a}", f"ever answered “{label}” at a check-in")
                for a, label in CHOICES
            ],
        ),
    ]
    engagement = [
        (f"{kind}:{campaign_id}/{step}", f"{verb} “{title}”")
        for step, title in earlier
        for kind, verb in (("opened", "opened"), ("clicked", "clicked a link in"))
    ]
    known = {value for _, group in out for value, _ in group} | {v for v, _ in engagement}
    for c in shown:
        if c.choice and c.choice not in known:
            key, _, value = c.choice.partition(":")
            said = rule({key: value}).removeprefix("people ").removeprefix("who ")
            engagement.append((c.choice, said))
    if engagement:
        out.append(("Emails opened or clicked", engagement))
    return out


def form_builder(
    join: str,
    choices: Sequence[str],
    senses: Sequence[str],
    *,
    advanced: bool,
    delay_days: str,
    checkin: bool,
) -> Builder:
    """The builder as posted: one choice and one sense ("" or "not") per condition row, empty
    rows skipped; ``advanced`` when the form showed the rule as "edited in the advanced view"."""
    conditions = [
        Condition(choice.strip()[:200], i < len(senses) and senses[i] == "not")
        for i, choice in enumerate(choices[:64])
        if choice.strip()
    ]
    return Builder(
        join="any" if join == "any" else "all",
        conditions=conditions,
        representable=not advanced,
        delay_days=delay_days.strip()[:10],
        checkin=checkin,
    )


def check_rule(data: dict[str, Any] | None) -> str | None:
    """Why the rule is refused, in plain words, or None."""
    if data is None:
        return None
    try:
        parse_rule(data)
    except ValidationError:
        return "one of these conditions is not one the console knows; choose it again"
    return None


def settings_builder(settings: str) -> Builder | None:
    """The form for a step's YAML settings; None when the YAML cannot be read (the advanced
    view says why)."""
    try:
        data = yamltext.safe_load(settings) if settings.strip() else {}
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    shown = from_rule(data.get("when"))
    delay = data.get("delay_days", 7)
    return Builder(
        join=shown[0] if shown else "all",
        conditions=shown[1] if shown else [],
        representable=shown is not None,
        delay_days=str(delay),
        checkin=data.get("checkin") is True,
    )


def merge(settings: str, snapshot: str, posted: Builder) -> tuple[str, dict[str, str]]:
    """The step's YAML settings with the form's changes written in: (settings, errors by field
    name). Only what differs from ``snapshot`` (what the form showed) is written, so the
    advanced view's edits in the same save stay; nothing changed in the form, the YAML is
    returned exactly as typed."""
    try:
        before = yamltext.safe_load(snapshot) if snapshot else None
    except yaml.YAMLError:
        before = None
    if not isinstance(before, dict):
        return settings, {}
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    if posted.delay_days != str(before.get("delay_days")):
        if not posted.delay_days.isdigit() or int(posted.delay_days) > DELAY_MAX:
            errors["delay_days"] = f"Write a whole number of days from 0 to {DELAY_MAX}."
        else:
            changes["delay_days"] = int(posted.delay_days)
    if posted.checkin != before.get("checkin"):
        changes["checkin"] = posted.checkin
    if posted.representable and before.get("rule") != "advanced":
        rule = to_rule(posted.join, posted.conditions)
        if rule != before.get("rule"):
            why = check_rule(rule)
            if why:
                errors["rule"] = why[:1].upper() + why[1:] + "."
            else:
                changes["when"] = rule
    if errors or not changes:
        return settings, errors
    try:
        data = yamltext.safe_load(settings) if settings.strip() else {}
    except yaml.YAMLError:
        return settings, {"settings": "Fix the advanced view's YAML before using the form."}
    if not isinstance(data, dict):
        return settings, {"settings": "Fix the advanced view's YAML before using the form."}
    for key, value in changes.items():
        if value is None or value is False:
            data.pop(key, None)
        else:
            data[key] = value
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000) if data else ""
    return text, {}
