"""The warning-signs table: each sign, what to do about it (its tier) and its wording, once.

The table is data (``templates/emails/warning-signs.yaml``), validated here, and every place that
lists the signs renders from it: campaign and system emails through the ``warning_signs``
template variable (:func:`template_variable`), the signup page, the "worse" check-in page and
the API's ``urgent_care`` answer through :func:`html` and :func:`text`. The tier leads name the
clinic's settings (emergency number, urgent-advice line, family doctor), never fixed numbers.

The content gate (``campaigns.gate``) uses :attr:`Sign.names` to find a sign named by hand in
an email and fails it when the sentence sends readers to a different tier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from html import escape
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core import yamltext

TABLE_FILE = Path(__file__).parent / "emails" / "warning-signs.yaml"

Tier = Literal["emergency", "urgent", "soon"]
TIERS: tuple[Tier, ...] = ("emergency", "urgent", "soon")
# The settings a tier's lead may name, as {placeholders}.
LINE_FIELDS = ("emergency_number", "urgent_advice", "family_doctor")
UK_LINES: Mapping[str, str] = {
    "emergency_number": "999",
    "urgent_advice": "NHS 111",
    "family_doctor": "GP",
}


class Sign(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    tier: Tier
    text: str = Field(min_length=3, max_length=200)
    short: str | None = Field(None, max_length=60)
    names: tuple[str, ...] = Field(min_length=1)

    @field_validator("names")
    @classmethod
    def _regexes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for regex in v:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(f"{regex!r} is not a valid pattern: {exc}") from None
        return v

    @property
    def patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(r, re.IGNORECASE) for r in self.names)

    def named_in(self, sentence: str) -> bool:
        return any(p.search(sentence) for p in self.patterns)


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: dict[Tier, str]
    signs: tuple[Sign, ...] = Field(min_length=1)

    @field_validator("tiers")
    @classmethod
    def _leads(cls, v: dict[Tier, str]) -> dict[Tier, str]:
        for tier in TIERS:
            if tier not in v:
                raise ValueError(f"no lead line for the tier {tier!r}")
            try:
                v[tier].format(**UK_LINES)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"the {tier} lead may name only {{{'}, {'.join(LINE_FIELDS)}}} ({exc})"
                ) from None
        return v

    @model_validator(mode="after")
    def _unique(self) -> Table:
        ids = [s.id for s in self.signs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"signs listed twice: {', '.join(dupes)}")
        if not any(s.short for s in self.signs if s.tier == "emergency"):
            raise ValueError("no emergency sign has a 'short' wording for the one-line reminder")
        return self

    def of(self, tier: Tier) -> tuple[Sign, ...]:
        return tuple(s for s in self.signs if s.tier == tier)

    def lead(self, tier: Tier, lines: Mapping[str, str]) -> str:
        return self.tiers[tier].format(**{k: lines[k] for k in LINE_FIELDS})


@cache
def table() -> Table:
    """The bundled table (read and validated once)."""
    return load(TABLE_FILE)


def load(path: Path) -> Table:
    return Table.model_validate(yamltext.safe_load(path.read_text(encoding="utf-8")))


def lines_of(clinic: object) -> dict[str, str]:
    """The three settings from anything that has them as attributes (``ClinicInfo``)."""
    return {k: str(getattr(clinic, k)) for k in LINE_FIELDS}


def markdown(lines: Mapping[str, str], tiers: Iterable[Tier] = TIERS) -> str:
    """The tiers' leads in bold, each followed by its signs as a bullet list."""
    t = table()
    blocks = []
    for tier in tiers:
        items = "\n".join(f"- {s.text}" for s in t.of(tier))
        blocks.append(f"**{t.lead(tier, lines)}**\n\n{items}")
    return "\n\n".join(blocks)


def one_line(lines: Mapping[str, str]) -> str:
    """The one-line reminder every confirmation carries: the most urgent signs and the number."""
    shorts = [s.short for s in table().of("emergency") if s.short]
    listed = ", ".join(shorts[:-1]) + f" or {shorts[-1]}" if len(shorts) > 1 else shorts[0]
    return (
        f"If you ever notice {listed}, call {lines['emergency_number']} or go to the nearest "
        "emergency department now."
    )


def html(lines: Mapping[str, str], tiers: Iterable[Tier] = ("emergency", "urgent")) -> str:
    """The tiers as HTML for the hosted pages (escaped)."""
    t = table()
    out = []
    for tier in tiers:
        items = "".join(f"<li>{escape(s.text)}</li>" for s in t.of(tier))
        out.append(f"<p><strong>{escape(t.lead(tier, lines))}</strong></p><ul>{items}</ul>")
    return "".join(out)


def text(lines: Mapping[str, str], tiers: Iterable[Tier] = ("emergency", "urgent")) -> str:
    """The tiers as plain sentences (the API's ``urgent_care`` answer)."""
    t = table()
    return " ".join(
        f"{t.lead(tier, lines)} {'; '.join(s.text for s in t.of(tier))}." for tier in tiers
    )


# Fields of the ``warning_signs`` template variable, each Markdown ready to stand on its own
# lines: ``all`` (every tier), one per tier, ``now`` (emergency and urgent), and ``line``.
TEMPLATE_FIELDS = frozenset({"all", "now", "line", *TIERS})


def template_variable(lines: Mapping[str, str]) -> dict[str, str]:
    return {
        "all": markdown(lines),
        "now": markdown(lines, ("emergency", "urgent")),
        "emergency": markdown(lines, ("emergency",)),
        "urgent": markdown(lines, ("urgent",)),
        "soon": markdown(lines, ("soon",)),
        "line": one_line(lines),
    }
