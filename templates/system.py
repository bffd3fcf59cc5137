"""The system emails (confirmation, safety, staff alert, check-in follow-ups), written like
campaign steps."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from templates.render import Content, Rendered, Renderer

SYSTEM_DIR = Path(__file__).parent / "emails" / "system"
# checkin-followup: to a subscriber who answered "Worse" to a check-in (an invitation to book);
# checkin-staff: the matching notice to CLINICMAIL_STAFF_EMAIL (a link to the record, nothing more).
# reengage: the sunset policy's one "still want these?" email with its "keep me" link (keep_url).
SYSTEM_EMAILS = (
    "confirm",
    "safety",
    "staff-alert",
    "checkin-followup",
    "checkin-staff",
    "reengage",
)
# Emails to staff about the service itself (no subscriber; each has its own variables):
# a failing transport (scheduler.breaker), a spam-complaint rate alert (engagement.complaints),
# a campaign set aside because its emails cannot be built (scheduler.library), an email set
# aside because the provider refused its content (scheduler.setaside), a webhook receiver
# switched off after failing for days (scheduler.webhooks) and follow-ups nobody has closed in
# time (scheduler.followups; a count and a link, never who or what); and the review workflow's
# notices to staff (scheduler.review_notices): a submission to clinicians, a decision to its
# author, and live content whose clinical review falls due soon, to clinicians.
OPS_EMAILS = (
    "transport-alert",
    "complaint-alert",
    "campaign-alert",
    "message-alert",
    "webhook-alert",
    "followup-alert",
    "review-submitted",
    "review-decided",
    "review-due",
)
STAFF_REASON = "you are listed as the clinic's staff contact"


def split_front_matter(text: str) -> tuple[str, str, int]:
    """Return (front matter YAML, body, body's first line number). Front matter is required."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ValueError("missing front matter: the file must start with a line '---'")
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1 :]), i + 2
    raise ValueError("front matter is not closed by a line '---'")


@cache
def system_content(name: str) -> Content:
    if name not in SYSTEM_EMAILS and name not in OPS_EMAILS:
        raise KeyError(name)
    path = SYSTEM_DIR / f"{name}.md"
    fm, body, _ = split_front_matter(path.read_text(encoding="utf-8"))
    meta = yaml.safe_load(fm) or {}
    return Content(
        subject=str(meta["subject"]),
        preheader=str(meta.get("preheader", "")),
        body=body,
        name=f"system/{name}.md",
    )


def render_ops_email(renderer: Renderer, name: str, values: dict[str, Any]) -> Rendered:
    """One of :data:`OPS_EMAILS` with its variables, to the staff contact (no unsubscribe)."""
    if name not in OPS_EMAILS:
        raise KeyError(name)
    return renderer.render(
        system_content(name),
        reason=STAFF_REASON,
        list_name="system",
        extra=values,
        with_unsubscribe=False,
    )
