"""Segment rules and delays in plain words, for staff who do not read YAML."""

from __future__ import annotations

from typing import Any

from subscribers.symptoms import BY_CODE, GROUPS

_GROUPS = {g.id: g.label.lower() for g in GROUPS}


def _codes(codes: list[str]) -> str:
    names = [BY_CODE[c].label.lower() if c in BY_CODE else c for c in codes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def rule(r: Any) -> str:
    """One rule (a ``subscribers.segments`` model) as a phrase."""
    if r is None:
        return "everyone"
    data = r.model_dump(by_alias=True, exclude_none=True)
    return _phrase(data)


def _phrase(d: Any) -> str:
    if not isinstance(d, dict) or len(d) != 1:
        return str(d)
    (key, value), *_ = d.items()
    if key == "all":
        return "everyone" if not value else " and ".join(_phrase(v) for v in value)
    if key == "any":
        return "either " + " or ".join(_phrase(v) for v in value)
    if key == "not":
        return f"not ({_phrase(value)})"
    if key == "has":
        return f"has {_codes([value])}"
    if key == "has_any":
        return f"has {_codes(value)}"
    if key == "has_all":
        return "has all of " + ", ".join(_codes([c]) for c in value)
    if key == "in_group":
        return f"has a symptom in “{_GROUPS.get(value, value)}”"
    if key == "subscribed_days_gte":
        return f"subscribed at least {value} days"
    if key == "timezone":
        return f"lives in the {value} time zone"
    if key == "checkin":
        return f"last check-in answer was “{value}”"
    if key in ("clicked", "opened"):
        return f"{key} a link in {value}" if key == "clicked" else f"opened {value}"
    return f"{key}: {value}"


def delay(days: int, first: bool) -> str:
    if first:
        return (
            "at the first send time after they confirm"
            if days == 0
            else f"{days} days after they confirm"
        )
    if days == 0:
        return "straight after the one before (at least 7 days apart)"
    return f"{days} days after the one before"
