"""Branching by engagement, checked: every ``clicked:`` / ``opened:`` rule must name a real
campaign and step, and one that can already have happened when the rule is tested.

A rule is tested just before the step that holds it is sent (a step's ``when``, a variant's
``when``) or before the first email (a campaign's ``audience``). A reference to that same step or
a later one of the same campaign could never be true yet: the person has not had that email. Such
a rule is refused, with the file, the line and the step ids that would work.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from subscribers.segments import All, AnyOf, Clicked, Not, Opened, Rule, _Engaged

# Campaign ids of one-off broadcasts start with this; campaign folders cannot (no dots allowed).
BROADCAST_PREFIX = "broadcast."


@dataclass(frozen=True)
class RuleSite:
    """Where a rule is written and when it is tested."""

    file: str
    text: str  # the YAML the rule was read from, to find its line
    offset: int  # line number of ``text``'s first line, minus one
    rule: Rule
    campaign_id: str
    step_index: int | None  # the step it guards; None for the audience (before any email)


@dataclass(frozen=True)
class RefProblem:
    file: str
    line: int | None
    message: str


def engaged(rule: Rule) -> Iterator[_Engaged]:
    """Every ``clicked`` / ``opened`` leaf of a rule tree."""
    if isinstance(rule, (Clicked, Opened)):
        yield rule
    elif isinstance(rule, All):
        for r in rule.all:
            yield from engaged(r)
    elif isinstance(rule, AnyOf):
        for r in rule.any:
            yield from engaged(r)
    elif isinstance(rule, Not):
        yield from engaged(rule.not_)


def _written(leaf: _Engaged) -> str:
    kind = "clicked" if isinstance(leaf, Clicked) else "opened"
    campaign, step = leaf.target()
    return f"{kind}: {campaign}/{step}" if step else f"{kind}: {campaign}"


def _line(site: RuleSite, leaf: _Engaged) -> int | None:
    campaign, step = leaf.target()
    needle = f"{campaign}/{step}" if step else campaign
    for i, line in enumerate(site.text.splitlines()):
        if needle in line and ("clicked" in line or "opened" in line or line.strip()[:1] == "-"):
            return i + 1 + site.offset
    return site.offset + 1 if site.text else None


def target_problem(
    leaf: _Engaged, steps: Mapping[str, Sequence[str]], *, allow_broadcasts: bool = True
) -> str | None:
    """Why a reference names nothing (unknown campaign or step), in words an author can act on."""
    campaign, step = leaf.target()
    if campaign.startswith(BROADCAST_PREFIX) and allow_broadcasts:
        return None  # broadcasts live in the database; the library check cannot see them
    if campaign not in steps:
        known = ", ".join(sorted(steps)) or "none"
        return f"'{_written(leaf)}' names no campaign {campaign!r}; known campaigns: {known}"
    if step is not None and step not in steps[campaign]:
        return (
            f"'{_written(leaf)}': campaign {campaign!r} has no step {step!r}; "
            f"use one of its step ids: {', '.join(steps[campaign])}"
        )
    return None


def check_sites(
    sites: Sequence[RuleSite],
    steps: Mapping[str, Sequence[str]],
    unreadable: Collection[str] = (),
) -> list[RefProblem]:
    """Problems with the engagement references in ``sites``; ``steps`` maps each campaign id
    to its step ids in order; references into ``unreadable`` campaigns are not checked."""
    problems: list[RefProblem] = []
    for site in sites:
        for leaf in engaged(site.rule):
            if leaf.target()[0] in unreadable:
                continue
            where = (site.file, _line(site, leaf))
            why = target_problem(leaf, steps)
            if why is not None:
                problems.append(RefProblem(*where, why))
                continue
            campaign, step = leaf.target()
            if campaign != site.campaign_id:
                continue
            own = steps[campaign]
            if site.step_index is None:
                problems.append(
                    RefProblem(
                        *where,
                        f"'{_written(leaf)}' is in the audience, which is checked before the "
                        "first email of this campaign, so it could never match; use it in a "
                        "later step's 'when' or a variant instead",
                    )
                )
                continue
            earlier = list(own[: site.step_index])
            if step is None and not earlier:
                problems.append(
                    RefProblem(
                        *where,
                        f"'{_written(leaf)}' is tested before this campaign's first email, so "
                        "it could never match; move it to a later step",
                    )
                )
            elif step is not None and step not in earlier:
                hint = (
                    f"refer to an earlier step: {', '.join(earlier)}"
                    if earlier
                    else "move the rule to a later step"
                )
                problems.append(
                    RefProblem(
                        *where,
                        f"'{_written(leaf)}' refers to this step or a later one; nobody has had "
                        f"that email when this step is sent, so it could never match; {hint}",
                    )
                )
    return problems
