"""An email as a given person would get it, without a person: ``clinicmail campaigns preview``
and ``journey``. Links point at a ``PREVIEW`` token that opens nothing."""

from __future__ import annotations

from campaigns.definitions import Campaign, Variant
from campaigns.journey import Journey
from campaigns.rendering import render_variant
from templates import Renderer, fill

FALLBACK_NAME = "there"  # what an email says when the person gave no first name


def preview_values(base_url: str, first_name: str | None) -> dict[str, str]:
    """The per-recipient values of a preview: the name, and links that open nothing."""
    return {
        "first_name": first_name or FALLBACK_NAME,
        "unsubscribe_url": f"{base_url}/unsubscribe/PREVIEW",
        "preferences_url": f"{base_url}/preferences/PREVIEW",
        "checkin_url": f"{base_url}/checkin/PREVIEW",
    }


def preview_email(
    renderer: Renderer, campaign: Campaign, variant: Variant, base_url: str, first_name: str | None
) -> tuple[str, str, str]:
    """``variant`` of ``campaign`` rendered and filled: (subject, html, text)."""
    rendered = render_variant(renderer, campaign, variant)
    return fill(rendered, preview_values(base_url, first_name))


def journey_subjects(
    renderer: Renderer, campaign: Campaign, path: Journey, first_name: str | None
) -> list[str]:
    """The subject line of each email on ``path``, as the person would read it."""
    subjects = []
    for email in path.emails:
        variant = campaign.step(email.step).variant(email.variant)
        rendered = render_variant(renderer, campaign, variant)
        subjects.append(fill(rendered, {"first_name": first_name or FALLBACK_NAME})[0])
    return subjects
