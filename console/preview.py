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
from subscribers.segments import Facts
from templates import Renderer, TemplateProblem, fill


@dataclass(frozen=True)
class Finding:
    """One message for the author: where, what, and how serious."""

    where: str
    message: str
    severity: str = "error"  # error | warning


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
        data = yaml.safe_load(files.get("campaign.yaml", "")) or {}
        return str(data.get("name") or campaign_id)
    except yaml.YAMLError:
        return campaign_id


def gate_findings(subject: str, preheader: str, body: str, week: int) -> list[Finding]:
    """The content gate's findings (phrases a clinic should not send, subjects naming a
    condition, reading grade, length, the week-1 urgent-care section), as the editor shows them."""
    from campaigns.gate import check_text

    return [
        Finding(f"line {f.line}" if f.line else f.path, f.message, f.severity)
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
    out.findings += [_finding(p) for p in problems if p.file.endswith(name)]
    out.findings += [_finding(p) for p in problems if not p.file.endswith(name)]
    variant, front_matter, own = versions.file_variant(name, files[name])
    if variant is None:
        if not any(f.where.startswith(name) for f in out.findings):
            out.findings += [_finding(p) for p in own]
        return out
    template_problems = check_template(renderer, variant, front_matter, CAMPAIGN_VARIABLES)
    if template_problems:
        known = {f.message for f in out.findings}
        out.findings += [_finding(p) for p in template_problems if p.message not in known]
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
        out.findings.append(Finding(name, exc.message))
        return out
    out.subject, out.html, out.text = fill(rendered, preview_values(base_url, persona.first_name))
    if campaign is not None:
        stem = name.split(".", 1)[0]
        step = next((s for s in campaign.steps if s.default.file.endswith(stem + ".md")), None)
        if step is not None:
            out.persona_variant = step.variant_for(Facts(symptoms=persona.symptoms)).id
    return out


def _finding(p: Problem) -> Finding:
    where = p.file.rsplit("/", 1)[-1]
    return Finding(f"{where}, line {p.line}" if p.line else where, p.message)
