"""The patient groups the bundled library writes for, and their journeys as a Markdown report.

Each :class:`Path` is one kind of patient with the symptom codes that put someone on it.
:data:`PRECEDENCE` is the order in which a step lists its variants, which decides the winner
when a reader ticks several groups (the first matching variant wins): engagement branches
first, then the group whose advice differs most from the default or carries the most safety
weight. ``scripts/content_doc.py`` writes :func:`journeys_markdown` into docs/content.md, and
a test fails when the two drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.definitions import Campaign
from campaigns.journey import journey


@dataclass(frozen=True)
class Path:
    id: str  # the variant id used for this group in every step
    label: str
    codes: tuple[str, ...]  # ticking any one of these puts a reader on the path
    persona: tuple[str, ...]  # a typical reader, for the journey report

    @property
    def symptoms(self) -> frozenset[str]:
        return frozenset(self.persona)


PATHS: tuple[Path, ...] = (
    Path("low-back", "Lower back", ("lower_back",), ("lower_back",)),
    Path("acute", "Sudden (acute) spasm", ("acute_spasm",), ("lower_back", "acute_spasm")),
    Path(
        "recurring",
        "Spasms that keep coming back",
        ("recurring_spasm",),
        ("lower_back", "recurring_spasm"),
    ),
    Path(
        "chronic", "Long-lasting (chronic) pain", ("chronic_pain",), ("lower_back", "chronic_pain")
    ),
    Path("sciatica", "Sciatica (into the leg)", ("sciatica",), ("lower_back", "sciatica")),
    Path("arm", "Arm symptoms", ("arm_symptoms",), ("neck", "arm_symptoms")),
    Path("neck", "Neck and desk posture", ("neck", "desk_posture"), ("neck", "desk_posture")),
    Path("mid-back", "Middle back", ("mid_back",), ("mid_back",)),
    Path(
        "stenosis",
        "Stenosis and spondylolisthesis",
        ("stenosis", "spondylolisthesis"),
        ("lower_back", "stenosis"),
    ),
    Path("disc", "Disc problem", ("disc_problem",), ("lower_back", "disc_problem")),
    Path("facet", "Facet joint", ("facet_joint",), ("lower_back", "facet_joint")),
    Path("sports", "Sports injury", ("sports_injury",), ("lower_back", "sports_injury")),
    Path("lifting", "Strain from lifting", ("lifting_strain",), ("lower_back", "lifting_strain")),
    Path("accident", "After an accident", ("after_accident",), ("neck", "after_accident")),
)

# The order of variants in every step: the first that matches wins.
PRECEDENCE: tuple[str, ...] = (
    "checkin-worse",  # a reader who just said they are worse hears about help first
    "accident",  # a broken bone must be ruled out first
    "stenosis",  # flexion-friendly advice differs most from the default
    "sciatica",  # nerve pain and its own warning signs
    "arm",
    # an engaged reader's finale, only without a "worse" check-in, and never in place of the
    # nerve paths' finales and their warning signs
    "strength",
    "disc",
    "facet",
    "chronic",
    "recurring",
    "sports",
    "lifting",
    "mid-back",
    "neck",
    "acute",  # the default is written much like it, so it yields to every other group
    "low-back",  # the place alone: every group above says more about the reader
)


def own_emails(campaign: Campaign, path: Path) -> list[str]:
    """The variant files written for ``path``: those whose id is the path's id."""
    return [v.file for s in campaign.steps for v in s.variants if v.id == path.id]


def journeys_markdown(campaign: Campaign) -> str:
    """For each path, the journey week by week, as ``campaigns journey`` computes it."""
    out: list[str] = []
    for path in PATHS:
        trip = journey(campaign, path.symptoms)
        own = sum(1 for e in trip.emails if e.variant == path.id)
        out.append(f"### {path.label}\n")
        out.append(
            f"Symptoms `{', '.join(path.codes)}`; shown for a reader with "
            f"`{','.join(sorted(path.persona))}`: {len(trip.emails)} emails, {own} written "
            f"for this group ({len(own_emails(campaign, path))} in the library).\n"
        )
        out.append("| week | step | variant | subject |")
        out.append("| ---: | --- | --- | --- |")
        for e in trip.emails:
            out.append(f"| {e.week} | {e.number:02d} {e.step} | {e.variant} | {e.subject} |")
        out.append("")
    return "\n".join(out)
