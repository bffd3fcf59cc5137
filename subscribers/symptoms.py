"""The controlled vocabulary of symptom codes subscribers state (listed in the README). Never
rename a code: imports, rules and stored data use them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True, slots=True)
class Symptom:
    code: str
    group: str
    label: str
    help: str


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    label: str
    question: str


GROUPS: tuple[Group, ...] = (
    Group("where", "Where", "Where do you feel it?"),
    Group("pattern", "Pattern", "How does it behave?"),
    Group("spreading", "Spreading", "Does it spread anywhere?"),
    Group("context", "Context", "What seems to set it off?"),
    Group("diagnosis", "Known diagnosis", "Has a clinician told you what it is?"),
    Group("red_flags", "Warning signs", "Do you have any of these right now?"),
)

SYMPTOMS: tuple[Symptom, ...] = (
    Symptom("lower_back", "where", "Lower back", "Pain or tightness below the ribs."),
    Symptom("mid_back", "where", "Middle back", "Between the shoulder blades or around the ribs."),
    Symptom("neck", "where", "Neck", "Neck, top of the shoulders or base of the skull."),
    Symptom(
        "acute_spasm",
        "pattern",
        "Sudden spasm",
        "Came on suddenly, often after lifting, twisting or bending.",
    ),
    Symptom(
        "recurring_spasm", "pattern", "Spasms that keep coming back", "It settles, then returns."
    ),
    Symptom("chronic_pain", "pattern", "Long-lasting pain", "Pain for more than three months."),
    Symptom("sciatica", "spreading", "Into the leg", "Pain, tingling or numbness down a leg."),
    Symptom("arm_symptoms", "spreading", "Into the arm", "Pain, tingling or numbness down an arm."),
    Symptom("desk_posture", "context", "Desk work", "Long hours sitting or at a screen."),
    Symptom("lifting_strain", "context", "Lifting", "Lifting, carrying or pushing loads."),
    Symptom("sports_injury", "context", "Sport", "Started with sport or exercise."),
    Symptom("after_accident", "context", "After an accident", "Started after a fall or collision."),
    Symptom("disc_problem", "diagnosis", "Disc problem", "A bulge, herniation or degeneration."),
    Symptom("facet_joint", "diagnosis", "Facet joint", "Irritation of the small spinal joints."),
    Symptom("stenosis", "diagnosis", "Stenosis", "Narrowing around the spinal cord or nerves."),
    Symptom(
        "spondylolisthesis", "diagnosis", "Spondylolisthesis", "One vertebra slipped on another."
    ),
    Symptom(
        "red_flag_bladder_bowel",
        "red_flags",
        "New bladder or bowel trouble",
        "Difficulty passing urine, or losing control of bladder or bowel.",
    ),
    Symptom(
        "red_flag_saddle_numbness",
        "red_flags",
        "Numbness between the legs",
        "Numbness around the buttocks, genitals or inner thighs.",
    ),
    Symptom(
        "red_flag_leg_weakness",
        "red_flags",
        "Leg weakness getting worse",
        "A leg or foot getting weaker, or a foot that drops.",
    ),
    Symptom(
        "red_flag_fever_weight_loss",
        "red_flags",
        "Fever or weight loss",
        "Back pain with fever, or weight loss you cannot explain.",
    ),
    Symptom(
        "red_flag_major_trauma",
        "red_flags",
        "Major injury",
        "Back or neck pain after a serious fall or road accident.",
    ),
)

BY_CODE: dict[str, Symptom] = {s.code: s for s in SYMPTOMS}
GROUP_IDS: frozenset[str] = frozenset(g.id for g in GROUPS)
RED_FLAGS: frozenset[str] = frozenset(s.code for s in SYMPTOMS if s.group == "red_flags")


# Arm-and-leg combinations: symptoms placing a reader on the neck or arm path (cord and arm
# signs) together with leg symptoms. The series follows the sciatica path and keeps the arm
# path's signs; staff see a flag on the person (docs/content.md, "Paths").
ARM_CODES: frozenset[str] = frozenset({"neck", "arm_symptoms"})
LEG_CODES: frozenset[str] = frozenset({"sciatica"})


def arm_and_leg(codes: set[str] | frozenset[str] | list[str]) -> bool:
    """Both an arm (or neck) and a leg code: a combination staff review."""
    found = set(codes)
    return bool(found & ARM_CODES) and bool(found & LEG_CODES)


@cache  # asked for every person a segment rule is matched against (an import: every row)
def codes_in_group(group: str) -> frozenset[str]:
    return frozenset(s.code for s in SYMPTOMS if s.group == group)


def unknown_codes(codes: list[str] | set[str] | frozenset[str]) -> list[str]:
    return sorted(c for c in codes if c not in BY_CODE)


def has_red_flag(codes: set[str] | frozenset[str] | list[str]) -> bool:
    return any(c in RED_FLAGS for c in codes)
