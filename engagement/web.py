"""HTTP routes for what people do with an email: tracked clicks, the open pixel, check-ins.

==================================  =============================================================
``GET|HEAD /r/{link_id}/{sig}``     302 to the stored URL that link names; records a click
``GET|HEAD /o/{send_id}/{sig}.gif`` a 1x1 GIF, never cached; records an open
``GET /checkin/{token}/{answer}``   a small page that sends the answer (changes nothing itself)
``POST /checkin/{token}/{answer}``  records the answer (idempotent; the latest answer wins)
==================================  =============================================================

Anything tampered, unsigned or unknown is a 404 and records nothing. With tracking off
(``CLINICMAIL_TRACKING=off``) links in emails already sent still redirect, but nothing is recorded.

Why a check-in GET does not record: mail security gateways fetch every link in an email, which
would answer all three at once (and "worse" alerts staff). The GET page submits the answer with
a POST on its own when a browser shows it, and shows a plain button when scripts are off. An
automatic POST that still looks like a machine (a scanner's user agent, or within seconds of
the email leaving) is not recorded; the page then asks for one click on the button.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import TypeVar

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from engagement import checkins
from engagement.process import applier
from engagement.tracking import Hit, machine_reason, record_click, record_open
from storage import Database, utcnow
from subscribers.pages import page
from subscribers.tokens import Tokens
from templates import warning_signs
from templates.checkin import ANSWERS, LABELS, QUESTION

# The smallest transparent GIF (1x1, 43 bytes).
R = TypeVar("R")

PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "0",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class EngagementPorts:
    """What the routes need from the composition root."""

    db: Database
    tokens: Tokens
    clinic_name: str
    booking_url: str
    tracking: bool = True  # record opens and clicks (links always redirect)
    # Whether a request's cookies are a signed-in staff browser's: its opens and clicks are
    # never recorded (looking at an email in the console is not engagement); links still work.
    staff_browser: Callable[[Connection, Mapping[str, str]], bool] = lambda _conn, _cookies: False
    on_worse: checkins.WorseHook | None = None
    # Runs after a response that stored events (default: apply pending events at once).
    apply: Callable[[], object] | None = None
    clock: Callable[[], datetime] = utcnow
    # The clinic's emergency number, urgent-advice line and family doctor (the warning signs).
    care_lines: Mapping[str, str] = field(default_factory=lambda: dict(warning_signs.UK_LINES))


# Sends the answer as soon as the page is visible (a mail scanner's fetch never is). Served as
# /assets/checkin.js: no inline script, so the pages' CSP can forbid inline script altogether.
CHECKIN_JS = (
    "(function(){var f=document.getElementById('checkin-form');"
    "function go(){if(document.visibilityState==='visible'){"
    "document.getElementById('checkin-via').value='auto';f.submit();return true;}"
    "return false;}"
    "if(!go()){document.addEventListener('visibilitychange',go);}})();\n"
)


def router(ports: EngagementPorts) -> APIRouter:
    r = APIRouter()

    apply_now = applier(ports.db.begin, ports.clock, ports.apply)

    def hit(request: Request) -> Hit:
        return Hit(request.method, request.headers.get("user-agent"), ports.clock())

    # -- tracked links and the open pixel ---------------------------------------------------
    async def recorded(
        request: Request,
        background: BackgroundTasks,
        record: Callable[[Connection, Hit, bool], R | None],
        stored: Callable[[R], bool],
    ) -> R | None:
        """Verify and record one hit off the event loop (None: not ours, answer 404); a new
        event is applied after the answer has gone. A staff browser's hit is verified and
        answered like anyone's, but not recorded."""
        h = hit(request)
        cookies = dict(request.cookies)

        def run() -> R | None:
            with ports.db.begin() as conn:
                tracking = ports.tracking and not (cookies and ports.staff_browser(conn, cookies))
                return record(conn, h, tracking)

        found = await run_in_threadpool(run)
        if found is not None and stored(found):
            background.add_task(apply_now)
        return found

    @r.api_route("/r/{link_id}/{signature}", methods=["GET", "HEAD"], include_in_schema=False)
    async def tracked_link(
        link_id: str, signature: str, request: Request, background: BackgroundTasks
    ) -> Response:
        found = await recorded(
            request,
            background,
            lambda conn, h, tracking: record_click(
                conn, ports.tokens, link_id, signature, h, record=tracking
            ),
            lambda found: found[1],
        )
        if found is None:
            return Response(status_code=404, headers=NO_CACHE)
        return RedirectResponse(found[0], status_code=302, headers=NO_CACHE)

    @r.api_route("/o/{send_id}/{signature}.gif", methods=["GET", "HEAD"], include_in_schema=False)
    async def open_pixel(
        send_id: str, signature: str, request: Request, background: BackgroundTasks
    ) -> Response:
        stored = await recorded(
            request,
            background,
            lambda conn, h, tracking: record_open(
                conn, ports.tokens, send_id, signature, h, record=tracking
            ),
            bool,
        )
        if stored is None:
            return Response(status_code=404, headers=NO_CACHE)
        return Response(PIXEL_GIF, media_type="image/gif", headers=NO_CACHE)

    # -- check-ins ----------------------------------------------------------------------------
    def not_found() -> HTMLResponse:
        return page(
            "Link not recognised", "<p>This link is not valid. Nothing was recorded.</p>", 404
        )

    def send_for(conn: Connection, token: str, answer: str) -> checkins.CheckinSend | None:
        if answer not in ANSWERS:
            return None
        send_id = ports.tokens.read("checkin", token)
        return checkins.find_send(conn, send_id) if send_id else None

    def others(token: str, answer: str) -> str:
        t = escape(token)
        links = " &middot; ".join(
            f'<a href="/checkin/{t}/{value}">{escape(LABELS[value])}</a>'
            for value in ANSWERS
            if value != answer
        )
        return f"<p>Not what you meant? Choose {links}.</p>"

    def ask_page(token: str, answer: str, *, auto: bool) -> HTMLResponse:
        t, a = escape(token), escape(answer)
        script = '<script src="/assets/checkin.js" defer></script>' if auto else ""
        body = (
            f"<p>Your answer: <strong>{escape(LABELS[answer])}</strong></p>"
            f'<form method="post" action="/checkin/{t}/{a}" id="checkin-form">'
            '<input type="hidden" name="via" value="button" id="checkin-via">'
            '<button type="submit">Send my answer</button></form>' + others(token, answer) + script
        )
        return page(QUESTION, body)

    def thanks_page(token: str, answer: str) -> HTMLResponse:
        clinic = escape(ports.clinic_name)
        if answer == checkins.WORSE:
            booking = escape(ports.booking_url)
            body = (
                "<p>Thank you for telling us. We're sorry things are harder at the moment.</p>"
                "<p>When pain isn't easing, a check-up can help you understand what is going on "
                f'and what will help. You can <a href="{booking}">book an assessment</a> with '
                f"{clinic}; we are emailing you the details too.</p>"
                '<div class="urgent"><p><strong>Please get urgent care, without waiting for a '
                "booking,</strong> if you notice any of these signs.</p>"
                f"{warning_signs.html(ports.care_lines)}</div>"
            )
        elif answer == "better":
            body = (
                "<p>Thank you for letting us know. We're glad things are getting better: keep "
                "going with what is helping.</p>"
            )
        else:
            body = (
                "<p>Thank you for letting us know. Recovery often comes in small steps, and "
                "next week's email has more that may help.</p>"
            )
        return page("Thank you", body + others(token, answer))

    @r.get("/assets/checkin.js", include_in_schema=False)
    def checkin_js() -> Response:
        return Response(
            CHECKIN_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @r.get("/checkin/{token}/{answer}", response_class=HTMLResponse, include_in_schema=False)
    def checkin_page(token: str, answer: str) -> HTMLResponse:
        with ports.db.begin() as conn:
            if send_for(conn, token, answer) is None:
                return not_found()
        return ask_page(token, answer, auto=True)

    @r.post("/checkin/{token}/{answer}", response_class=HTMLResponse, include_in_schema=False)
    async def checkin_answer(token: str, answer: str, request: Request) -> HTMLResponse:
        form = await request.form()
        via = str(form.get("via") or "button")
        agent = request.headers.get("user-agent")

        def save() -> HTMLResponse:
            now = ports.clock()
            with ports.db.begin() as conn:
                send = send_for(conn, token, answer)
                if send is None:
                    return not_found()
                if via == "auto" and machine_reason("POST", agent, send.sent_at, now):
                    # Probably a link scanner running the page's script: ask for a real click.
                    return ask_page(token, answer, auto=False)
                checkins.answer(conn, send, answer, now, ports.on_worse)
            return thanks_page(token, answer)

        return await run_in_threadpool(save)

    return r
