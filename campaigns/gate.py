"""The content gate: what a clinic should check before an email goes to patients.

``clinicmail campaigns validate`` runs it on every email of every campaign, and the staff
console runs :func:`check_text` on every save. Each :class:`Finding` names the file (or the
part: ``subject``, ``preheader``, ``body``), the line where known, a stable ``code`` and a
message an author can act on.

Errors stop ``campaigns validate``; warnings are printed and stop it only with ``--strict``
(the bundled library passes strictly). What is checked:

- ``phrase``: words a clinic should not send, each with its reason (promises such as "cure",
  fear-raising framing such as "wear and tear", outdated advice such as traction);
- ``subject-condition``: a subject that names a condition or symptom, which the mailbox
  provider and anyone who sees the inbox would read;
- ``reading-grade`` (school grade ≤ 8) and ``word-count`` (150–400 words as read);
- ``urgent-care`` and ``urgent-signs`` in week 1: a section headed like "When to get help
  fast" that sends people to ``{{ clinic.emergency_number }}`` and
  ``{{ clinic.urgent_advice }}``, listing every warning sign;
- ``audience-words``: an email written for neck readers that talks about "your back";
- ``hard-coded-number``: an emergency or urgent-advice number, "A&E" or "GP" written into the
  text instead of the clinic's settings (``{{ clinic.emergency_number }}``,
  ``{{ clinic.urgent_advice }}``, ``{{ clinic.family_doctor }}``);
- ``sign-tier``: a warning sign from the table (``templates/emails/warning-signs.yaml``) named
  in a sentence that sends readers somewhere other than the table's tier for it (a weakening
  leg to "see a clinician", a fever to the emergency number);
- ``review``: sources named by title and an honest review state, never a placeholder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import PurePosixPath
from typing import Literal

from campaigns.definitions import Campaign, Review, Variant
from campaigns.loader import DEMO_CLINIC
from campaigns.readability import measure, plain
from subscribers.segments import Facts, Rule
from templates import Content, Renderer, TemplateProblem, fill, warning_signs

MAX_GRADE = 8.0
MIN_WORDS = 150
MAX_WORDS = 400

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One thing to fix. ``line`` is 1-based in ``path`` when known."""

    path: str
    line: int | None
    code: str
    message: str
    severity: Severity

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message} [{self.code}]"


@dataclass(frozen=True)
class Phrase:
    pattern: re.Pattern[str]
    reason: str
    severity: Severity = "error"


def _p(regex: str, reason: str, severity: Severity = "error") -> Phrase:
    return Phrase(re.compile(regex, re.IGNORECASE), reason, severity)


# What a clinic should not send, and why. Matched case-insensitively on whole words.
PHRASES: tuple[Phrase, ...] = (
    _p(r"\bcur(e|es|ed|ing)\b", "promises an outcome nobody can promise; say what tends to help"),
    _p(r"\bguarantee", "promises an outcome nobody can promise"),
    _p(r"\b(100 ?%|miracle|instant relief|permanent fix)", "an overclaim no evidence supports"),
    _p(
        r"\bwear(ing)? and tear\b|\bworn (out|down)\b|\bwore (out|down)\b",
        "frames normal age changes as damage; most such changes are painless",
    ),
    _p(
        r"\bdegenerat",
        "sounds like decay; say 'changes with age', which are common in people without pain",
    ),
    _p(r"\bslipped disc", "discs do not slip; the phrase is inaccurate and alarming"),
    _p(
        r"\b(out of (place|alignment)|misalign|crumbl)",
        "suggests a displaced or breaking spine, which is rarely true and raises fear",
    ),
    _p(r"\btraction\b", "NICE NG59 advises against traction for low back pain and sciatica"),
    _p(
        r"\b(never|don'?t|do not|avoid) bend",
        "bending is safe for most people and often eases stenosis; no blanket ban",
    ),
    _p(
        r"\b(bad|poor|wrong|incorrect) posture\b",
        "presents posture as a cause, which the evidence does not support well",
        "warning",
    ),
    _p(
        r"\bbed rest\b",
        "guidance is to stay active; check the sentence does not advise it",
        "warning",
    ),
)

# Words that name a condition, symptom or body part in trouble: a subject with one tells the
# provider and anyone glancing at the inbox something about the reader's health.
SUBJECT_WORDS = re.compile(
    r"\b(sciatic\w*|stenosis|spondylo\w*|dis[ck]s?|herniat\w*|hernia|prolapse\w*|bulg\w*|"
    r"slipped|facet|arthrit\w*|osteo\w*|degenerat\w*|whiplash|fractur\w*|nerves?|numb\w*|"
    r"tingl\w*|spasms?|cramps?|chronic|injur\w*|pain\w*|aches?|aching|sore\w*|stiff\w*|"
    r"hurts?|hurting|neck|spine|spinal|lumbar|legs?|arms?|bladder|bowels?|cancer|fever|"
    r"trauma|weakness|sprain\w*|strain\w*|diagnos\w*|condition)\b",
    re.IGNORECASE,
)

URGENT_HEADING = re.compile(
    r"^#{1,3}\s+.*\b(urgent|help fast|emergency|warning signs?|get help)\b", re.IGNORECASE
)
_HEADING = re.compile(r"^(#{1,6})\s")
EMERGENCY_VAR = re.compile(r"\{\{\s*clinic\.emergency_number\s*\}\}")
URGENT_VAR = re.compile(r"\{\{\s*clinic\.urgent_advice\s*\}\}")
# The table rendered whole: its emergency and urgent tiers carry every sign week 1 must list.
TABLE_VAR = re.compile(r"\{\{\s*warning_signs\.(now|all)\s*\}\}")
ANY_TABLE_VAR = re.compile(r"\{\{\s*warning_signs\.\w+\s*\}\}")

# Numbers and names that belong in settings, never in the text. Emergency and urgent numbers
# of the UK, the US and the EU, the UK's names for them, and the UK's name for a family doctor.
HARD_CODED = re.compile(
    r"(?<![\w.])(999|911|112|111|116 ?117)(?!\w|\.\d)|\bA ?& ?E\b|\bA&amp;E\b|\bNHS ?111\b|"
    r"\bGPs?\b"
)

# What a sentence tells readers to do, by tier of the warning-signs table.
TIER_MARKERS: dict[str, re.Pattern[str]] = {
    "emergency": re.compile(
        r"clinic\.emergency_number|emergency department|\bambulance\b", re.IGNORECASE
    ),
    "urgent": re.compile(r"clinic\.urgent_advice|\bsame day\b|\btoday\b", re.IGNORECASE),
}
SOON_MARKER = re.compile(
    r"clinic\.family_doctor|\bsee (a|your) (clinician|doctor|physio\w*)\b|\bget it checked\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*{])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")

# Every warning sign week 1 must list, each found by the words a plain list would use.
URGENT_SIGNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(regex, re.IGNORECASE))
    for label, regex in (
        ("bladder or bowel change", r"bladder|bowel"),
        ("saddle numbness", r"numb\w*[^.\n]*(bottom|genital|saddle|inner thigh|between)"),
        ("sexual dysfunction", r"sexual|erection"),
        ("symptoms in both legs", r"both legs"),
        ("leg weakness getting worse", r"leg[^.\n]*weak|weak[^.\n]*leg"),
        ("history of cancer", r"cancer"),
        ("immune suppression or long-term steroids", r"immune[^.\n]*steroid|steroid"),
        ("injecting drug use", r"inject\w* drugs?|drug use"),
        ("fever or unexplained weight loss", r"fever[^.\n]*weight|weight[^.\n]*fever"),
        ("constant night pain", r"night"),
        ("major trauma", r"accident|trauma|bad fall"),
        ("worsening arm weakness", r"arm[^.\n]*weak|weak[^.\n]*arm|hand[^.\n]*weak"),
        ("clumsy hands", r"clumsy"),
        ("unsteady walking", r"unsteady"),
        ("dizziness, double vision or trouble swallowing after neck trauma", r"double vision"),
    )
)

# A source that looks like a file name rather than a title the reader could look up.
_FILE_LIKE = re.compile(r"\.(txt|md|pdf|html?)$|^[0-9a-f_]{8,}", re.IGNORECASE)

_NECK_ONLY = Facts(symptoms=frozenset({"neck"}))
_BACK_ONLY = Facts(symptoms=frozenset({"lower_back"}))
_BACK_WORDS = re.compile(r"\byour (lower )?back\b", re.IGNORECASE)


@cache
def _renderer() -> Renderer:
    return Renderer(DEMO_CLINIC)


def reading_text(subject: str, preheader: str, body: str) -> str:
    """The words a subscriber reads: Jinja filled in, Markdown rendered, footer left out.

    Raises :class:`templates.TemplateProblem` when the template cannot render.
    """
    rendered = _renderer().render(
        Content(subject, preheader, body, button=("Book an assessment", "https://x")),
        reason="r",
        list_name="l",
    )
    _, _, text = fill(rendered, {"first_name": "Sam", "unsubscribe_url": "", "preferences_url": ""})
    return plain(text.split("\n\n--\n", 1)[0])


def _phrases(part: str, text: str) -> list[Finding]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for phrase in PHRASES:
            m = phrase.pattern.search(line)
            if m:
                found.append(
                    Finding(
                        part,
                        number if part == "body" else None,
                        "phrase",
                        f"{part}: '{m.group(0)}': {phrase.reason}",
                        phrase.severity,
                    )
                )
    return found


def _urgent(body: str) -> list[Finding]:
    lines = body.splitlines()
    start = next((i for i, line in enumerate(lines) if URGENT_HEADING.match(line)), None)
    if start is None:
        return [
            Finding(
                "body",
                None,
                "urgent-care",
                "week 1 needs an urgent-care section: a heading such as '## When to get help "
                "fast' that lists the warning signs and sends people to "
                "{{ clinic.emergency_number }} and {{ clinic.urgent_advice }}",
                "warning",
            )
        ]
    level = len(_HEADING.match(lines[start]).group(1))  # type: ignore[union-attr]
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if (m := _HEADING.match(lines[i])) and len(m.group(1)) <= level
        ),
        len(lines),
    )
    section = "\n".join(lines[start:end])
    if TABLE_VAR.search(section):
        return []  # the table's emergency and urgent tiers, in the clinic's settings
    found = []
    for var, name in ((EMERGENCY_VAR, "emergency_number"), (URGENT_VAR, "urgent_advice")):
        if not var.search(section):
            found.append(
                Finding(
                    "body",
                    start + 1,
                    "urgent-care",
                    f"the urgent-care section must name {{{{ clinic.{name} }}}} (a clinic "
                    "setting, so a clinic abroad sends its own number)",
                    "warning",
                )
            )
    missing = [label for label, pattern in URGENT_SIGNS if not pattern.search(section)]
    if missing:
        found.append(
            Finding(
                "body",
                start + 1,
                "urgent-signs",
                f"the urgent-care section does not list: {'; '.join(missing)}",
                "warning",
            )
        )
    return found


def _hard_coded(part: str, text: str) -> list[Finding]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for m in HARD_CODED.finditer(line):
            found.append(
                Finding(
                    part,
                    number if part == "body" else None,
                    "hard-coded-number",
                    f"{part}: '{m.group(0)}' is written in; use {{{{ clinic.emergency_number }}}}, "
                    "{{ clinic.urgent_advice }} or {{ clinic.family_doctor }} (clinic settings, "
                    "so a clinic elsewhere sends its own), or a warning_signs variable",
                    "error",
                )
            )
    return found


def _sentences(body: str) -> list[tuple[int, str]]:
    """(line, text) of each sentence a reader would read as one instruction: sentences of a
    paragraph, and each list item joined to the last sentence of the paragraph leading into
    its list (where "call … if you have:" usually stands)."""
    out: list[tuple[int, str]] = []
    lead = ""
    paragraph: list[tuple[int, str]] = []

    def flush() -> None:
        nonlocal lead
        if not paragraph:
            return
        text = " ".join(t for _, t in paragraph)
        parts = _SENTENCE_END.split(text)
        out.extend((paragraph[0][0], p) for p in parts)
        lead = parts[-1]
        paragraph.clear()

    for number, line in enumerate(body.splitlines(), start=1):
        if ANY_TABLE_VAR.search(line):  # rendered from the table itself
            flush()
            lead = ""
            continue
        if _LIST_ITEM.match(line):
            flush()
            out.append((number, f"{lead} {_LIST_ITEM.sub('', line)}"))
        elif not line.strip() or _HEADING.match(line):
            flush()
            if _HEADING.match(line):
                lead = ""
        else:
            paragraph.append((number, line.strip()))
    flush()
    return out


def _tiers_named(sentence: str) -> set[str]:
    tiers = {tier for tier, pattern in TIER_MARKERS.items() if pattern.search(sentence)}
    if not tiers and SOON_MARKER.search(sentence):
        tiers.add("soon")
    return tiers


def _sign_tiers(body: str) -> list[Finding]:
    """A sign named with a tier other than the table's: the mixed message the review found
    (a weakening leg sent to "see a clinician", a fever to the emergency number)."""
    found = []
    signs = warning_signs.table().signs
    for line, sentence in _sentences(body):
        tiers = _tiers_named(sentence)
        if not tiers:
            continue
        # A sign in the table's own words is that sign, whatever other signs' words it holds
        # ("clumsy hands … that gets worse fast" is the emergency sign, not the urgent one).
        rest, quoted = sentence.lower(), set()
        for sign in signs:
            if sign.text.lower() in rest:
                quoted.add(sign.id)
                rest = rest.replace(sign.text.lower(), " ")
        for sign in signs:
            named = sign.id in quoted or sign.named_in(rest)
            if sign.tier not in tiers and named:
                wrong = " and ".join(sorted(tiers))
                found.append(
                    Finding(
                        "body",
                        line,
                        "sign-tier",
                        f"the warning sign '{sign.id}' is sent to the {wrong} tier here, but the "
                        f"warning-signs table says {sign.tier}; use the table's tier (or a "
                        "warning_signs variable)",
                        "error",
                    )
                )
    return found


def check_text(subject: str, preheader: str, body: str, *, week: int) -> list[Finding]:
    """Check one email as written (Jinja + Markdown). ``week`` is when it is sent (1-based).

    ``path`` on each finding is the part: ``subject``, ``preheader`` or ``body``; body lines
    are 1-based within the body.
    """
    found: list[Finding] = []
    m = SUBJECT_WORDS.search(subject)
    if m:
        found.append(
            Finding(
                "subject",
                None,
                "subject-condition",
                f"subject: '{m.group(0)}' names a condition or symptom; the mailbox provider "
                "and anyone who sees the inbox would read it, so keep subjects general",
                "error",
            )
        )
    found += _phrases("subject", subject) + _phrases("preheader", preheader)
    found += _phrases("body", body)
    for part, text in (("subject", subject), ("preheader", preheader), ("body", body)):
        found += _hard_coded(part, text)
    found += _sign_tiers(body)
    try:
        grade, words = measure(reading_text(subject, preheader, body))
    except TemplateProblem as exc:
        found.append(Finding(exc.part or "body", exc.line, "template", exc.message, "error"))
    else:
        if grade > MAX_GRADE:
            found.append(
                Finding(
                    "body",
                    None,
                    "reading-grade",
                    f"reads at school grade {grade}; aim for {MAX_GRADE:g} or below with "
                    "shorter sentences and everyday words",
                    "warning",
                )
            )
        if not MIN_WORDS <= words <= MAX_WORDS:
            found.append(
                Finding(
                    "body",
                    None,
                    "word-count",
                    f"{words} words; a weekly email reads best at {MIN_WORDS}-{MAX_WORDS}",
                    "warning",
                )
            )
    if week == 1:
        found += _urgent(body)
    return found


def check_review(review: Review | None, path: str) -> list[Finding]:
    """Sources named by title, and no review signed by a placeholder."""
    if review is None:
        return [Finding(path, None, "review", "no review block: name its sources", "warning")]
    found = []
    signed = f"{review.reviewed_by} {review.status}".lower()
    if "placeholder" in signed:
        found.append(
            Finding(
                path,
                None,
                "review",
                "signed by a placeholder; leave the review state as 'not yet reviewed by a "
                "clinician at your clinic' until a clinician approves it",
                "error",
            )
        )
    if not review.sources:
        found.append(
            Finding(
                path,
                None,
                "review",
                "no sources: name the articles (by title) or the guideline it follows",
                "warning",
            )
        )
    for source in review.sources:
        if _FILE_LIKE.search(source.strip()):
            found.append(
                Finding(
                    path,
                    None,
                    "review",
                    f"source {source!r} looks like a file name; name the article by its "
                    "title or the guideline followed",
                    "warning",
                )
            )
    return found


def _only_for_neck(rule: Rule | None) -> bool:
    return rule is not None and rule.matches(_NECK_ONLY) and not rule.matches(_BACK_ONLY)


def _variant(variant: Variant, week: int) -> list[Finding]:
    found = []
    for f in check_text(variant.subject, variant.preheader, variant.body, week=week):
        line = variant.body_line + f.line - 1 if f.path == "body" and f.line else None
        found.append(replace(f, path=variant.file, line=line))
    if _only_for_neck(variant.when):
        for number, text in enumerate(variant.body.splitlines(), start=variant.body_line):
            m = _BACK_WORDS.search(text)
            if m:
                found.append(
                    Finding(
                        variant.file,
                        number,
                        "audience-words",
                        f"'{m.group(0)}' in an email written for neck readers",
                        "warning",
                    )
                )
    return found + check_review(variant.review, variant.file)


def check_campaign(campaign: Campaign) -> list[Finding]:
    """Every email of ``campaign`` (each step's default and variants), in file order."""
    found: list[Finding] = []
    if campaign.steps:
        folder = PurePosixPath(campaign.steps[0].default.file).parent
        found += check_review(campaign.meta.review, str(folder / "campaign.yaml"))
    day = 0
    for index, step in enumerate(campaign.steps):
        gap = step.delay_days if index == 0 else max(step.delay_days, campaign.meta.cadence_days)
        day += gap
        week = day // 7 + 1
        for variant in (step.default, *step.variants):
            found += _variant(variant, week)
    return found
