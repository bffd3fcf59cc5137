"""The system emails, written like campaign steps, and the one registry of their policy.

Each system email has a name (its file ``emails/system/<name>.md``) and a :class:`SystemEmail`
saying who it is for, why they get it (the footer's reason), whether it carries an unsubscribe
link, which values its caller supplies and which per-recipient links it holds. Dispatch, the
onboarding rules and the staff-alert deliverer ask the registry (:func:`system_email`); every
caller names an email by the constants below, never by a string of its own.

Two kinds:

* **ledger emails** (:data:`SYSTEM_EMAILS`) are rows of the send ledger about one subscriber:
  to that person, or (audience ``staff``) to the clinic's staff contact about that person;
* **ops alerts** (:data:`OPS_EMAILS`) concern the service itself, not any subscriber: they wait
  in the ops-alert queue and go to the staff contact outside the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from core import yamltext
from templates.render import PLACEHOLDER_FIELDS, Content, Rendered, Renderer, html_token

SYSTEM_DIR = Path(__file__).parent / "emails" / "system"

Audience = Literal["subscriber", "staff"]
SUBSCRIBER: Audience = "subscriber"
STAFF: Audience = "staff"
STAFF_REASON = "you are listed as the clinic's staff contact"

# -- the names ------------------------------------------------------------------------------
CONFIRM = "confirm"
SAFETY = "safety"
STAFF_ALERT = "staff-alert"
CHECKIN_FOLLOWUP = "checkin-followup"
CHECKIN_STAFF = "checkin-staff"
REENGAGE = "reengage"
TRANSPORT_ALERT = "transport-alert"
COMPLAINT_ALERT = "complaint-alert"
CAMPAIGN_ALERT = "campaign-alert"
MESSAGE_ALERT = "message-alert"
WEBHOOK_ALERT = "webhook-alert"
FOLLOWUP_ALERT = "followup-alert"
REVIEW_SUBMITTED = "review-submitted"
REVIEW_DECIDED = "review-decided"
REVIEW_DUE = "review-due"


@dataclass(frozen=True)
class SystemEmail:
    """What the service needs to know to send one system email.

    ``variables`` are the values the caller supplies when rendering. For a ledger email each
    is a flag that is true when the ledger row's variant has its name (``confirm``'s ``urgent``
    variant); for an ops alert they are the figures the alert names, stored with it when it is
    raised. ``links`` are per-recipient URLs the sender builds for each recipient (rendered as
    tokens, filled per recipient). ``unsubscribe`` adds the footer's unsubscribe and
    preferences links and the List-Unsubscribe header. ``asks_consent`` marks the one email that
    goes to an address whose owner has not (or no longer) consented: the confirmation.
    """

    name: str
    audience: Audience
    reason: str
    unsubscribe: bool = False
    variables: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    in_ledger: bool = True
    asks_consent: bool = False
    addressed: bool = False  # an ops email to one member of staff: its ``to`` variable says who


def _alert(name: str, *variables: str) -> SystemEmail:
    return SystemEmail(name, STAFF, STAFF_REASON, variables=variables, in_ledger=False)


REVIEW_REASON = "you review or write what this clinic's patients read"


def _notice(name: str, *variables: str) -> SystemEmail:
    """A review-workflow notice to one member of staff (a clinician, or an author)."""
    return SystemEmail(
        name, STAFF, REVIEW_REASON, variables=("to", *variables), in_ledger=False, addressed=True
    )


REGISTRY: Mapping[str, SystemEmail] = {
    e.name: e
    for e in (
        SystemEmail(
            CONFIRM,
            SUBSCRIBER,
            "someone asked to subscribe this address to our weekly emails",
            variables=("urgent",),  # the "urgent" variant adds a general urgent-care note
            links=("confirm_url",),
            asks_consent=True,
        ),
        SystemEmail(
            SAFETY,
            SUBSCRIBER,
            "you signed up for emails from us and told us about a warning sign",
            unsubscribe=True,
        ),
        # To CLINICMAIL_STAFF_EMAIL about a person who told us about a warning sign.
        SystemEmail(STAFF_ALERT, STAFF, STAFF_REASON, links=("record_url",)),
        # To a subscriber who answered "Worse" to a check-in (an invitation to book) ...
        SystemEmail(
            CHECKIN_FOLLOWUP,
            SUBSCRIBER,
            "you answered a check-in in one of our weekly emails",
            unsubscribe=True,
        ),
        # ... and the matching notice to staff (a link to the record, nothing more).
        SystemEmail(CHECKIN_STAFF, STAFF, STAFF_REASON, links=("record_url",)),
        # The sunset policy's one "still want these?" email with its "keep me" link.
        SystemEmail(
            REENGAGE,
            SUBSCRIBER,
            "you subscribed to our weekly back and neck care emails",
            unsubscribe=True,
            links=("keep_url",),
        ),
        # Ops alerts: a failing transport (scheduler.breaker), a spam-complaint rate alert
        # (engagement.complaints), a campaign set aside because its emails cannot be built
        # (scheduler.library), an email set aside because the provider refused its content
        # (scheduler.setaside), a webhook receiver switched off after failing for days
        # (outgoing.posting). ``transport`` is filled in by the deliverer when not given.
        _alert(TRANSPORT_ALERT, "transport", "since", "failures", "error"),
        _alert(
            COMPLAINT_ALERT,
            "day",
            "complaints",
            "volume",
            "rate",
            "paused",
            "alert_limit",
            "pause_limit",
            "min_volume",
        ),
        _alert(CAMPAIGN_ALERT, "count", "campaigns", "problems"),
        _alert(MESSAGE_ALERT, "transport", "email", "reason"),
        _alert(WEBHOOK_ALERT, "endpoint", "url", "since", "error"),
        # Follow-ups nobody closed in time (scheduler.followups): a count and a link, never
        # who or what they reported.
        _alert(FOLLOWUP_ALERT, "count", "within", "followups_url"),
        # The review workflow's notices (scheduler.review_notices): a submission to each
        # clinician, a decision to its author, live content whose review falls due soon.
        _notice(REVIEW_SUBMITTED, "item", "by", "review_url"),
        _notice(REVIEW_DECIDED, "item", "by", "review_url", "decision", "note"),
        _notice(REVIEW_DUE, "count", "campaigns", "interval", "reviews_url"),
    )
}
SYSTEM_EMAILS = tuple(name for name, e in REGISTRY.items() if e.in_ledger)
OPS_EMAILS = tuple(name for name, e in REGISTRY.items() if not e.in_ledger)


def system_email(name: str) -> SystemEmail:
    """The policy of system email ``name`` (KeyError for a name that is not one)."""
    return REGISTRY[name]


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
    if name not in REGISTRY:
        raise KeyError(name)
    path = SYSTEM_DIR / f"{name}.md"
    fm, body, _ = split_front_matter(path.read_text(encoding="utf-8"))
    meta = yamltext.safe_load(fm) or {}
    return Content(
        subject=str(meta["subject"]),
        preheader=str(meta.get("preheader", "")),
        body=body,
        name=f"system/{name}.md",
    )


def render_system(
    renderer: Renderer, name: str, values: Mapping[str, Any] | None = None
) -> Rendered:
    """System email ``name`` rendered as its registry entry says: its reason, its unsubscribe
    link or none, its per-recipient links as tokens, and ``values`` (its variables)."""
    spec = system_email(name)
    extra: dict[str, Any] = {
        link: html_token(link) for link in spec.links if link not in PLACEHOLDER_FIELDS
    }
    extra.update(values or {})
    return renderer.render(
        system_content(name),
        reason=spec.reason,
        list_name="system",
        extra=extra or None,
        with_unsubscribe=spec.unsubscribe,
    )
