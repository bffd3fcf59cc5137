"""The clinical review screen: the queue (campaign versions and newsletters together) and one
version as the clinician decides on it.

The screen shows the version that awaits review (never an older one, never a newer draft):
every email of it as it will be sent (the text part, rendered with this clinic's settings, each
symptom-path variant), each with its tracked changes against the live version (changed emails
first, unchanged ones folded away), who changed what and when, and the approve / request
changes form with a note. Who may decide is the review workflow's rule (campaigns.review); the
decision posts to the campaign's workflow routes. The sign-off pack is offered for download.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from campaigns import newsletters as nl
from campaigns import versions
from campaigns.definitions import Campaign
from campaigns.previews import preview_email
from campaigns.review import is_reviewer
from campaigns.versions import Version
from console.auth import Staff
from console.deps import Db, Ports, Render
from console.errors import NotFound
from console.redline import redline
from console.render import page
from console.words import rule
from staff import audit
from storage import utcnow
from templates import Renderer


@dataclass(frozen=True)
class ReviewEmail:
    key: str  # "step/variant"
    step: int
    title: str
    who: str
    subject: str
    text: str
    changed: bool
    new: bool
    subject_redline: str
    text_redline: str


def _emails(
    renderer: Renderer, camp: Campaign, base_url: str
) -> dict[str, tuple[str, str, str, str, int]]:
    out = {}
    for step in camp.steps:
        for variant in (step.default, *step.variants):
            subject, _, text = preview_email(renderer, camp, variant, base_url, None)
            who = "everyone else on this step" if variant.when is None else rule(variant.when)
            out[f"{step.id}/{variant.id}"] = (
                f"Step {step.number}: {step.id} ({variant.id})",
                who,
                subject,
                text,
                step.number,
            )
    return out


def compare(
    renderer: Renderer, base_url: str, version: Version, live: Version | None
) -> list[ReviewEmail]:
    """Every email of ``version``, with its tracked changes against ``live``; changed first."""
    camp, _ = versions.parse(version.campaign_id, version.files, renderer)
    if camp is None:
        return []
    mine = _emails(renderer, camp, base_url)
    theirs: dict[str, tuple[str, str, str, str, int]] = {}
    if live is not None and live.id != version.id:
        live_camp, _ = versions.parse(live.campaign_id, live.files, renderer)
        if live_camp is not None:
            theirs = _emails(renderer, live_camp, base_url)
    rows = []
    for key, (title, who, subject, text, number) in mine.items():
        before = theirs.get(key)
        old_subject, old_text = (before[2], before[3]) if before else ("", "")
        changed = before is None or (old_subject, old_text) != (subject, text)
        rows.append(
            ReviewEmail(
                key=key,
                step=number,
                title=title,
                who=who,
                subject=subject,
                text=text,
                changed=bool(theirs) and changed,
                new=bool(theirs) and before is None,
                subject_redline=str(redline(old_subject, subject)) if before else subject,
                text_redline=str(redline(old_text, text)) if before else text,
            )
        )
    rows.sort(key=lambda e: (not e.changed, e.step))
    return rows


router = APIRouter()


@router.get("/admin/reviews", include_in_schema=False)
def queue(request: Request, session: Staff, db: Db) -> Response:
    """What clinicians need to look at: everything awaiting review (campaign versions and
    newsletters, oldest first), and live content whose review is due."""
    now = utcnow()
    with db.begin() as conn:
        waiting = [
            v for cid in versions.campaign_ids(conn) for v in versions.awaiting_review(conn, cid)
        ]
        letters = nl.awaiting_review(conn)
        due = [
            v
            for v in versions.in_state(conn, versions.ACTIVE)
            if v.clinic_reviewed and v.review_due(now)
        ]
    return page(
        request,
        "reviews.html",
        {"title": "Reviews", "waiting": waiting, "letters": letters, "due": due, "now": now},
    )


@router.get("/admin/reviews/versions/{version_id}", include_in_schema=False)
def screen(
    request: Request, version_id: str, session: Staff, ports: Ports, renderer: Render
) -> Response:
    with ports.db.begin() as conn:
        v = versions.get(conn, version_id) if len(version_id) <= 32 else None
        if v is None:
            raise NotFound("No such version", "There is no such content version.")
        live = versions.live(conn, v.campaign_id)
        history = audit.entries(conn, target_type="campaign_version", target_id=v.id)
    emails = compare(renderer, ports.base_url, v, live)
    return page(
        request,
        "review.html",
        {
            "title": f"Review {v.campaign_id} version {v.number}",
            "v": v,
            "live": live if live is not None and live.id != v.id else None,
            "emails": emails,
            "changed": [e for e in emails if e.changed],
            "unchanged": [e for e in emails if not e.changed],
            "history": history,
            "may_approve": is_reviewer(session.user.role),
            "edited_it": session.user.id in v.editor_ids,
            "pack": ports.signoff_pack is not None,
        },
    )


@router.get("/admin/reviews/campaigns/{campaign_id}/signoff-pack.pdf", include_in_schema=False)
def pack(campaign_id: str, session: Staff, ports: Ports) -> Response:
    """The sign-off pack of the version awaiting review (else the live one)."""
    if ports.signoff_pack is None:
        raise NotFound("No sign-off pack", "The sign-off pack is not available here.")
    with ports.db.begin() as conn:
        if not versions.versions_of(conn, campaign_id):
            raise NotFound("No such campaign", "There is no such campaign.")
    data = ports.signoff_pack(campaign_id)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}-signoff-pack.pdf"'},
    )
