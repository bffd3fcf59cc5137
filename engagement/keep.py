"""``/keep/{token}``: the "yes, keep sending me emails" link of the re-engagement email.

The token is signed with its own salt (purpose ``keep``) and carries only the subscriber's
opaque ``public_id``. Like unsubscribe links, ``GET`` only shows a page with one button and
changes nothing: mail security scanners follow every GET link within seconds of delivery, and
a scanner must not be able to keep a dormant person on the list. ``POST`` re-activates.
A token that does not verify is a 404 and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from engagement import sunset
from storage import Database
from subscribers import store
from subscribers.pages import one_button, page
from subscribers.tables import subscribers
from subscribers.tokens import Tokens


@dataclass
class KeepPorts:
    db: Database
    tokens: Tokens
    clinic_name: str


def router(ports: KeepPorts) -> APIRouter:
    r = APIRouter()

    def not_found() -> HTMLResponse:
        return page(
            "Link not recognised", "<p>This link is not valid. Nothing was changed.</p>", 404
        )

    def confirmed_person(token: str) -> int | HTMLResponse:
        """The subscriber a keep link names, or the page to answer instead: an unknown link,
        or someone no longer subscribed (keeping is never a way back in: consent is double
        opt-in)."""
        public_id = ports.tokens.read("keep", token)
        if public_id is None:
            return not_found()
        with ports.db.begin() as conn:
            row = conn.execute(
                select(subscribers.c.id, subscribers.c.status).where(
                    subscribers.c.public_id == public_id
                )
            ).first()
        if row is None:
            return not_found()
        if row.status != store.CONFIRMED:
            return page(
                "You are unsubscribed",
                "<p>You are unsubscribed and will get no emails from us. To hear from us again, "
                'please <a href="/signup">sign up</a>.</p>',
            )
        return int(row.id)

    @r.get("/keep/{token}", response_class=HTMLResponse, include_in_schema=False)
    def keep_page(token: str) -> HTMLResponse:
        found = confirmed_person(token)
        if isinstance(found, HTMLResponse):
            return found
        form = one_button(
            f"Would you like to keep getting weekly emails from {escape(ports.clinic_name)}?",
            f"/keep/{token}",
            "Yes, keep sending me emails",
        )
        return page("Keep your weekly emails", form)

    @r.post("/keep/{token}", response_class=HTMLResponse, include_in_schema=False)
    def keep(token: str) -> HTMLResponse:
        found = confirmed_person(token)
        if isinstance(found, HTMLResponse):
            return found
        with ports.db.begin() as conn:
            sunset.keep(conn, found, datetime.now(UTC))
        return page(
            "Thank you, you'll keep getting our emails",
            "<p>Your weekly emails start again with the next one that is due. You can change "
            "how often you hear from us, or stop, from the link at the bottom of any email.</p>",
        )

    return r
