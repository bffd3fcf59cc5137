"""HTTP routes owned by the subscribers package: confirmation and one-click unsubscribe.

RFC 8058: ``POST /unsubscribe/{token}`` with ``List-Unsubscribe=One-Click`` unsubscribes at once;
``GET`` only shows a page with a confirm button (mail scanners follow GET links) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, select, update

from storage import Database
from subscribers import store
from subscribers.tables import subscribers
from subscribers.tokens import Tokens


@dataclass
class SubscriberPorts:
    """What the routes need from the composition root."""

    db: Database
    tokens: Tokens
    clinic_name: str
    on_confirmed: Callable[[Connection, list[int], datetime], None]
    on_unsubscribed: Callable[[Connection, int, datetime], None]


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;
line-height:1.6;color:#1d2a26}}button{{font-size:1.1rem;padding:.6rem 1.2rem;border-radius:6px;
border:0;background:#17453b;color:#fff;cursor:pointer}}button:focus{{outline:3px solid #f2b705}}</style>
</head><body><main><h1>{escape(title)}</h1>{body}</main></body></html>"""
    return HTMLResponse(html, status_code=status)


def router(ports: SubscriberPorts) -> APIRouter:
    r = APIRouter()

    def not_found() -> HTMLResponse:
        return page(
            "Link not recognised", "<p>This link is not valid. Nothing was changed.</p>", 404
        )

    def subscriber_for(conn: Connection, purpose: str, token: str) -> int | None:
        public_id = ports.tokens.read(purpose, token)  # type: ignore[arg-type]
        return store.by_public_id(conn, public_id) if public_id else None

    @r.get("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
    def unsubscribe_page(token: str) -> HTMLResponse:
        with ports.db.begin() as conn:
            if subscriber_for(conn, "unsubscribe", token) is None:
                return not_found()
        form = (
            f"<p>Do you want to stop receiving emails from {escape(ports.clinic_name)}?</p>"
            f'<form method="post" action="/unsubscribe/{escape(token)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>'
        )
        return page("Unsubscribe", form)

    @r.post("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        # The body is read but not required to be exact: a one-click POST, or our own form.
        await request.body()
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            sid = subscriber_for(conn, "unsubscribe", token)
            if sid is None:
                return not_found()
            if store.unsubscribe(conn, sid, now, source="one-click"):
                ports.on_unsubscribed(conn, sid, now)
        return page(
            "You are unsubscribed",
            f"<p>You will not get any more emails from {escape(ports.clinic_name)}. "
            "Sorry to see you go, and we hope your back feels better soon.</p>",
        )

    @r.get("/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
    def confirm(token: str) -> HTMLResponse:
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            sid = subscriber_for(conn, "confirm", token)
            if sid is None:
                return page(
                    "Link not recognised",
                    "<p>This confirmation link is not valid or has expired. "
                    "Nothing was changed.</p>",
                    404,
                )
            status = conn.execute(
                select(subscribers.c.status).where(subscribers.c.id == sid)
            ).scalar_one()
            if status == store.UNCONFIRMED:
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == sid)
                    .values(status=store.CONFIRMED, confirmed_at=now, updated_at=now)
                )
                store.record_consent(
                    conn,
                    sid,
                    purpose=store.EMAIL_PURPOSE,
                    action="confirmed",
                    at=now,
                    source="double-opt-in",
                )
                ports.on_confirmed(conn, [sid], now)
        return page(
            "Thank you, you're subscribed",
            "<p>Your first email will arrive soon, at a sensible hour.</p>",
        )

    return r
