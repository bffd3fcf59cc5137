"""Segment rules, delays and step names in plain words, for staff who do not read YAML.

:func:`rule` answers "who is it for?" with a phrase that stands on its own after "for" or
"Who it is for:": "everyone", "people with pain into the leg", "people without any warning
sign", "people who have had an accident and whose latest check-in answer was “Worse”".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from subscribers.symptoms import BY_CODE, GROUPS
from templates.checkin import CHOICES

# A symptom as the object of "people with …" (and "without …").
_THINGS = {
    "lower_back": "lower back pain",
    "mid_back": "middle back pain",
    "neck": "neck pain",
    "acute_spasm": "a sudden spasm",
    "recurring_spasm": "spasms that keep coming back",
    "chronic_pain": "long-lasting pain",
    "sciatica": "pain into the leg",
    "arm_symptoms": "pain into the arm",
    "desk_posture": "pain from desk work",
    "lifting_strain": "pain from lifting",
    "sports_injury": "a sports injury",
    "disc_problem": "a disc problem",
    "facet_joint": "a facet joint problem",
    "stenosis": "stenosis",
    "spondylolisthesis": "spondylolisthesis",
    "red_flag_bladder_bowel": "new bladder or bowel trouble",
    "red_flag_saddle_numbness": "numbness between the legs",
    "red_flag_leg_weakness": "leg weakness getting worse",
    "red_flag_fever_weight_loss": "fever or weight loss",
    "red_flag_major_trauma": "a major injury",
}
# Symptoms that read better as "who have had …" than "with …": (yes, no).
_EVENTS = {"after_accident": ("who have had an accident", "who have not had an accident")}
# A symptom group as the object of "people with any …" / "people without any …".
_GROUP_THINGS = {
    "where": "back or neck pain",
    "pattern": "known pain pattern",
    "spreading": "pain spreading into an arm or leg",
    "context": "known trigger (desk work, lifting, sport or an accident)",
    "diagnosis": "diagnosis from a clinician",
    "red_flags": "warning sign",
}
_GROUP_LABELS = {g.id: g.label for g in GROUPS}
_ANSWERS = dict(CHOICES)


def file_title(name: str) -> str:
    """A step's title from its file name when its subject cannot be read:
    ``02-the-first-few-days.md`` → "The first few days"."""
    if name.rsplit("/", 1)[-1] == "campaign.yaml":
        return "Campaign settings"
    stem = name.rsplit("/", 1)[-1].removesuffix(".md").split(".", 1)[0]
    number, _, slug = stem.partition("-")
    words = (slug if number.isdigit() and slug else stem).replace("-", " ").replace("_", " ")
    return words[:1].upper() + words[1:]


def _thing(code: str) -> str:
    if code in _THINGS:
        return _THINGS[code]
    return f"“{BY_CODE[code].label}”" if code in BY_CODE else f"“{code}”"


def _either(items: list[str], word: str) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


def _step(target: str, titles: Mapping[str, str]) -> str:
    if target in titles:
        return f"“{titles[target]}”"
    campaign, _, step = target.partition("/")
    if step:
        return f"“{file_title('00-' + step)}”"
    return f"any email of “{file_title('00-' + campaign)}”"


def _clause(key: str, value: Any, negate: bool, titles: Mapping[str, str]) -> str | None:
    """One condition as what follows "people …", or None for a key this does not know."""
    if key in ("has_any", "has_all", "has") and isinstance(value, str):
        value = [value]
    if key in ("has", "has_any") and isinstance(value, list):
        if len(value) == 1 and value[0] in _EVENTS:
            return _EVENTS[value[0]][negate]
        return ("without " if negate else "with ") + _either([_thing(c) for c in value], "or")
    if key == "has_all" and isinstance(value, list):
        things = _either([_thing(c) for c in value], "and")
        if len(value) == 1:
            return ("without " if negate else "with ") + things
        return ("who do not have all of " if negate else "with both ") + things
    if key == "in_group":
        thing = _GROUP_THINGS.get(value, f"symptom under “{_GROUP_LABELS.get(value, value)}”")
        return ("without any " if negate else "with any ") + thing
    if key == "subscribed_days_gte":
        days = f"{value} day{'' if value == 1 else 's'}"
        return f"who joined {'less than' if negate else 'at least'} {days} ago"
    if key == "timezone":
        return f"{'outside' if negate else 'in'} the {value} time zone"
    if key == "checkin":
        answer = _ANSWERS.get(value, value)
        return f"whose latest check-in answer was {'not ' if negate else ''}“{answer}”"
    if key == "checkin_ever":
        answer = _ANSWERS.get(value, value)
        return f"who {'never' if negate else 'once'} answered “{answer}” at a check-in"
    if key == "opened":
        return f"who {'did not open' if negate else 'opened'} {_step(value, titles)}"
    if key == "clicked":
        verb = "did not click a link in" if negate else "clicked a link in"
        return f"who {verb} {_step(value, titles)}"
    return None


def _part(d: Any, titles: Mapping[str, str], negate: bool = False) -> str:
    """A node as what follows "people …" (negated when ``negate``)."""
    if not isinstance(d, dict) or len(d) != 1:
        return f"matching {d}"
    (key, value), *_ = d.items()
    if key == "not":
        return _part(value, titles, not negate)
    if key in ("all", "any") and isinstance(value, list):
        parts = [_part(v, titles) for v in value]
        if not parts:
            return "who are nobody" if negate and key == "all" else "of any kind"
        if len(parts) == 1:
            return _part(value[0], titles, negate)
        joined = _either(parts, "and" if key == "all" else "or")
        if negate:
            return f"other than those {joined}"
        return f"either {joined}" if key == "any" else joined
    found = _clause(key, value, negate, titles)
    return found if found is not None else f"{'not ' if negate else ''}matching {key}: {value}"


def rule(r: Any, titles: Mapping[str, str] | None = None) -> str:
    """One rule (a ``subscribers.segments`` model, or its YAML data) as a phrase: "everyone"
    or "people …". ``titles`` maps "campaign/step" to a step's title, for engagement rules."""
    if r is None:
        return "everyone"
    data = r if isinstance(r, dict) else r.model_dump(by_alias=True, exclude_none=True)
    if data == {"all": []}:
        return "everyone"
    return "people " + _part(data, titles or {})


def delay(days: int, first: bool) -> str:
    if first:
        return (
            "at the first send time after they confirm"
            if days == 0
            else f"{days} day{'' if days == 1 else 's'} after they confirm"
        )
    if days == 0:
        return "straight after the one before (at least 7 days apart)"
    return f"{days} day{'' if days == 1 else 's'} after the one before"
