"""What the editor shows beside the text: the email as a persona would get it (HTML and plain
text) and every problem found, in plain words.

Problems come from the same checks as ``clinicmail campaigns validate`` (the whole campaign is
parsed with the edited file in place) and, when the content gate (``campaigns.gate``) is
installed, from its ``check_text``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from campaigns import versions
from campaigns.definitions import Campaign, CampaignMeta
from campaigns.loader import CAMPAIGN_VARIABLES, Problem, check_template
from campaigns.previews import preview_values
from campaigns.rendering import render_variant
from core import yamltext
from subscribers.segments import Facts
from templates import Renderer, TemplateProblem, fill
from templates.system import split_front_matter


@dataclass(frozen=True)
class Finding:
    """One message for the author: where, what, and how serious."""

    where: str
    message: str
    severity: str = "error"  # error | warning
    about_this: bool = False  # a problem of the file being edited (not another one)


@dataclass(frozen=True)
class Persona:
    symptoms: frozenset[str] = frozenset()
    first_name: str | None = None


@dataclass
class Preview:
    subject: str = ""
    html: str = ""
    text: str = ""
    findings: list[Finding] = field(default_factory=list)
    persona_variant: str | None = None  # which variant of the step this persona would get

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def _campaign_name(files: Mapping[str, str], campaign_id: str) -> str:
    try:
        data = yamltext.safe_load(files.get("campaign.yaml", "")) or {}
        return str(data.get("name") or campaign_id)
    except yaml.YAMLError:
        return campaign_id


def gate_findings(subject: str, preheader: str, body: str, week: int) -> list[Finding]:
    """The content gate's findings (phrases a clinic should not send, subjects naming a
    condition, reading grade, length, the week-1 urgent-care section), as the editor shows them."""
    from campaigns.gate import check_text

    return [
        Finding(
            f"{f.path.capitalize()}, line {f.line}" if f.line else f.path.capitalize(),
            f.message,
            f.severity,
        )
        for f in check_text(subject, preheader, body, week=week)
    ]


def _week_of(files: Mapping[str, str], name: str) -> int:
    from campaigns.authoring import steps

    order = steps(files)
    stem = name.split(".", 1)[0] + ".md"
    return order.index(stem) + 1 if stem in order else 1


def preview(
    renderer: Renderer,
    campaign_id: str,
    files: Mapping[str, str],
    name: str,
    persona: Persona,
    base_url: str,
) -> Preview:
    """Render file ``name`` of these ``files`` for ``persona`` and list every problem."""
    out = Preview()
    campaign, problems = versions.parse(campaign_id, files, renderer)
    out.findings += [_finding(p, files, name) for p in problems if p.file.endswith(name)]
    out.findings += [_finding(p, files, name) for p in problems if not p.file.endswith(name)]
    variant, front_matter, own = versions.file_variant(name, files[name])
    if variant is None:
        if not any(f.about_this for f in out.findings):
            out.findings += [_finding(p, files, name) for p in own]
        return out
    template_problems = check_template(renderer, variant, front_matter, CAMPAIGN_VARIABLES)
    if template_problems:
        known = {f.message for f in out.findings}
        out.findings += [
            _finding(p, files, name) for p in template_problems if p.message not in known
        ]
        return out
    out.findings += gate_findings(
        variant.subject, variant.preheader, variant.body, _week_of(files, name)
    )
    shell = Campaign(
        meta=CampaignMeta(id=campaign_id, name=_campaign_name(files, campaign_id)), steps=()
    )
    try:
        rendered = render_variant(renderer, shell, variant)
    except TemplateProblem as exc:
        out.findings.append(Finding("Body", exc.message))
        return out
    out.subject, out.html, out.text = fill(rendered, preview_values(base_url, persona.first_name))
    if campaign is not None:
        stem = name.split(".", 1)[0]
        step = next((s for s in campaign.steps if s.default.file.endswith(stem + ".md")), None)
        if step is not None:
            out.persona_variant = step.variant_for(Facts(symptoms=persona.symptoms)).id
    return out


def box_line(text: str, line: int | None) -> str:
    """Where file line ``line`` of a step or variant file is in the editor's boxes: "Body,
    line 3", "Settings, line 2", "Subject" or "Preheader". Line numbers count the lines of the
    box the person types in, never of the file as stored."""
    try:
        front, _, body_start = split_front_matter(text)
    except ValueError:
        return f"Line {line}" if line else "This email"
    if not line:
        return "This email"
    if line >= body_start:
        return f"Body, line {line - body_start + 1}"
    wanted = text.splitlines()[line - 1] if line - 1 < len(text.splitlines()) else ""
    key = wanted.split(":", 1)[0].strip()
    if key in ("subject", "preheader") and not wanted.startswith((" ", "-")):
        return key.capitalize()
    settings = [ln for ln in front.splitlines() if not ln.startswith(("subject:", "preheader:"))]
    if wanted in settings:
        return f"Settings, line {settings.index(wanted) + 1}"
    return "Settings"


def _finding(p: Problem, files: Mapping[str, str], name: str) -> Finding:
    """A loader problem, placed in the editor's boxes (this file) or named by the email or
    campaign setting it is in (another file)."""
    file = p.file.rsplit("/", 1)[-1]
    if file == "campaign.yaml":
        where = "Campaign settings" + (f", line {p.line}" if p.line else "")
        return Finding(where, p.message, about_this=False)
    place = box_line(files[file], p.line) if file in files else "This email"
    if file == name:
        return Finding(place, p.message, about_this=True)
    return Finding(f"Another email, “{_title(files, file)}”: {place.lower()}", p.message)


def _title(files: Mapping[str, str], file: str) -> str:
    from campaigns.authoring import AuthoringError, split
    from console.words import file_title

    try:
        return split(files[file]).subject.strip() or file_title(file)
    except (AuthoringError, KeyError):
        return file_title(file)
