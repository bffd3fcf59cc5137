"""The sign-off pack: what a clinician signs when they approve a campaign version.

One printable HTML document (:func:`build_pack`), turned into a PDF by WeasyPrint
(:func:`pdf_bytes`): the intended use, who the content is for and not for, every email exactly
as it is sent (rendered with this clinic's settings, each symptom-path variant, the text part),
the journey per symptom group week by week, the warning signs with what the service does about
each, the sources, the version and the fingerprint of its files, and the reviewer with their
registration and the review dates (the next one ``CLINICMAIL_REVIEW_INTERVAL`` after the last).

``clinicmail campaigns signoff-pack`` writes it; the console's review screen offers it for
download and for printing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.context import AppContext
from campaigns import versions
from campaigns.definitions import Campaign
from campaigns.journey import journey
from campaigns.previews import preview_email
from core.errors import InputError
from subscribers.symptoms import BY_CODE, SYMPTOMS
from subscribers.symptoms import GROUPS as SYMPTOM_GROUPS

TEMPLATE = "signoff.html"

# The symptom mixes the journey table follows: each place with what most changes the content
# (spreading pain, how long it has lasted, a known diagnosis, how it started).
JOURNEY_GROUPS: tuple[tuple[str, ...], ...] = (
    ("lower_back",),
    ("lower_back", "acute_spasm"),
    ("lower_back", "sciatica"),
    ("lower_back", "chronic_pain"),
    ("lower_back", "recurring_spasm"),
    ("lower_back", "disc_problem"),
    ("lower_back", "stenosis"),
    ("lower_back", "facet_joint"),
    ("lower_back", "sports_injury"),
    ("lower_back", "after_accident"),
    ("mid_back",),
    ("neck",),
    ("neck", "desk_posture"),
    ("neck", "arm_symptoms"),
)

# What the service does for every warning sign (campaigns never reach these people).
WARNING_ACTION = (
    "Never enrolled in an educational series. One safety email at once, at any hour: seek "
    "urgent medical care ({emergency} in an emergency, {urgent} for urgent advice), with the "
    "clinic's contact details. Clinic staff are alerted at {staff} with a link to the person's "
    "record."
)


class PackError(InputError, ValueError):
    """The pack cannot be made (no such campaign, or its content cannot be built)."""


@dataclass(frozen=True)
class PackEmail:
    step: int
    step_id: str
    variant: str
    who: str  # the rule that picks this variant, in words
    subject: str
    text: str
    sources: list[str]


@dataclass(frozen=True)
class Pack:
    campaign_id: str
    name: str
    number: int
    state: str
    fingerprint: str
    html: str
    emails: list[PackEmail] = field(default_factory=list)


def _who(rule: Any) -> str:
    """A segment rule in plain words (the console's phrasing)."""
    from console.words import rule as words

    return words(rule)


def _version(ctx: AppContext, campaign_id: str) -> versions.Version:
    _ = ctx.catalog  # the library is seeded first
    with ctx.db.begin() as conn:
        waiting = versions.awaiting_review(conn, campaign_id)
        if waiting:
            return waiting[-1]
        live = versions.live(conn, campaign_id)
        history = versions.versions_of(conn, campaign_id)
    if live is not None:
        return live
    if history:
        return history[0]
    raise PackError(f"no campaign {campaign_id!r}")


def _emails(ctx: AppContext, camp: Campaign) -> list[PackEmail]:
    out = []
    for step in camp.steps:
        for variant in (step.default, *step.variants):
            subject, _, text = preview_email(
                ctx.renderer, camp, variant, ctx.settings.base_url, None
            )
            out.append(
                PackEmail(
                    step=step.number,
                    step_id=step.id,
                    variant=variant.id,
                    who="everyone else on this step"
                    if variant.when is None
                    else _who(variant.when),
                    subject=subject,
                    text=text,
                    sources=list(variant.review.sources) if variant.review else [],
                )
            )
    return out


def _journeys(camp: Campaign) -> list[dict[str, Any]]:
    rows = []
    for codes in JOURNEY_GROUPS:
        path = journey(camp, frozenset(codes))
        rows.append(
            {
                "who": ", ".join(BY_CODE[c].label for c in codes),
                "excluded": path.excluded,
                "emails": [
                    {"week": e.week, "number": e.number, "variant": e.variant, "subject": e.subject}
                    for e in path.emails
                ],
            }
        )
    return rows


def build_pack(ctx: AppContext, campaign_id: str, now: datetime | None = None) -> Pack:
    """The pack for the campaign's version awaiting review (else its live one)."""
    from storage import utcnow

    v = _version(ctx, campaign_id)
    camp, problems = versions.parse(v.campaign_id, v.files, ctx.renderer)
    if camp is None or problems:
        raise PackError(
            f"version {v.number} of {campaign_id} has {len(problems)} problem(s); "
            "fix them before printing its sign-off pack"
        )
    s = ctx.settings
    emails = _emails(ctx, camp)
    sources = sorted({*camp.meta.review.sources, *(src for e in emails for src in e.sources)})
    reviewed = v.reviewed_at if v.clinic_reviewed else None
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=select_autoescape(["html"]),
    )
    html = env.get_template(TEMPLATE).render(
        clinic=s.clinic_name,
        address=s.clinic_address,
        made_at=now or utcnow(),
        campaign=camp,
        version=v,
        fingerprint=v.files_sha256,
        emails=emails,
        journeys=_journeys(camp),
        for_whom=_who(camp.meta.audience),
        red_flags=[x for x in SYMPTOMS if x.group == "red_flags"],
        groups=SYMPTOM_GROUPS,
        action=WARNING_ACTION.format(
            emergency=s.emergency_number,
            urgent=s.urgent_advice,
            staff=s.staff_email,
        ),
        sources=sources,
        reviewer=v.reviewed_by if reviewed else None,
        reviewed_at=reviewed,
        next_review=v.review_due_at if reviewed else None,
        interval_days=s.review_every.days,
        transport=s.transport,
    )
    return Pack(camp.id, camp.meta.name, v.number, v.state, v.files_sha256, html, emails)


def pdf_bytes(html: str) -> bytes:
    """The pack as a PDF (WeasyPrint; nothing is fetched: the pack has no remote resources)."""
    import weasyprint

    def refuse(url: str) -> dict[str, Any]:
        raise PackError(f"the sign-off pack may not load {url}")

    data = weasyprint.HTML(string=html, url_fetcher=refuse).write_pdf()
    assert isinstance(data, bytes)
    return data
