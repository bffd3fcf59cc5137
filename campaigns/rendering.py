"""Rendering one campaign email (a step's variant) with its footer reason: the one place the
dispatcher, `campaigns preview` and `campaigns journey` share."""

from __future__ import annotations

from campaigns.definitions import Campaign, Variant
from templates import Content, Rendered, Renderer

# ``cta: book`` in a step's front matter: the email's one call to action, a button to the
# clinic's booking page (CLINICMAIL_BOOKING_URL), tracked like every other link.
BOOK_BUTTON = ("Book an assessment", "{{ clinic.booking_url }}")


def content_of(variant: Variant) -> Content:
    return Content(
        subject=variant.subject,
        preheader=variant.preheader,
        body=variant.body,
        name=variant.file,
        button=BOOK_BUTTON if variant.cta == "book" else None,
    )


def render_variant(renderer: Renderer, campaign: Campaign, variant: Variant) -> Rendered:
    return renderer.render(
        content_of(variant),
        reason=(
            f"you subscribed to emails from {renderer.clinic.name}"
            if campaign.one_off
            else f"you subscribed to \u201c{campaign.meta.name}\u201d from {renderer.clinic.name}"
        ),
        list_name=campaign.id,
        checkin=variant.checkin,
    )
