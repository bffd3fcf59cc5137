"""HTTP routes owned by the subscribers package: signup (JSON API and hosted form), double opt-in
confirmation, one-click unsubscribe and the preference centre.

RFC 8058: ``POST /unsubscribe/{token}`` with ``List-Unsubscribe=One-Click`` unsubscribes at once;
``GET`` only shows a page with a confirm button (mail scanners follow GET links) and changes nothing.
A link whose token does not verify answers 404 and changes nothing.

A signup is answered 202 only once it is committed; a database that cannot be reached gets 503
with ``Retry-After`` (JSON for the API, a plain "please try again in a few minutes" page on the
form) and nothing half-stored, so the client's retry loses nothing. What a signup finds (a new
address, one already held, a suppressed or erased one) must not show in its timing: the work is
done inside the request, on the request's own clock, and the answer leaves at the next multiple
of :attr:`SubscriberPorts.signup_seconds` after the request arrived, whatever the work was.
Nothing runs after the answer, so the next request on the same keep-alive connection waits for
nothing either.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection

from core.throttle import Throttle
from storage import Database, unreachable
from subscribers import changes, held, store
from subscribers.pages import (
    PAUSE_WEEKS,
    SIGNUP_JS,
    one_button,
    page,
    preferences_form,
    signup_form,
)
from subscribers.signup import (
    Confirmation,
    SignupRequest,
    confirm,
    field_errors,
    form_to_data,
    register,
    validation_errors,
)
from subscribers.symptoms import BY_CODE, has_red_flag
from subscribers.tokens import Tokens
from templates import warning_signs

__all__ = ["SubscriberPorts", "page", "router"]

log = logging.getLogger("clinicmail.subscribers")

Hook = Callable[[Connection, int, datetime], None]
# After someone unsubscribed: (conn, subscriber id, when, send_id of the email whose link was
# used, or None when the link names no email).
UnsubscribeHook = Callable[[Connection, int, datetime, str | None], None]


@dataclass
class SubscriberPorts:
    """What the routes need from the composition root."""

    db: Database
    tokens: Tokens
    clinic_name: str
    on_confirmed: Callable[[Connection, list[int], datetime], None]
    on_unsubscribed: UnsubscribeHook
    # Queue the confirmation email a signup asks for (in the same transaction as the signup).
    on_signup: Callable[[Connection, Confirmation, datetime], None] | None = None
    signups_per_minute: int = 10  # per client IP, in this process
    # A signup is answered at a multiple of this many seconds after it arrived (module
    # docstring): longer than storing one takes, so every kind of address answers alike.
    signup_seconds: float = 0.1
    # The series a person is in, as (id, name), and how to leave one (preference centre).
    series_of: Callable[[Connection, int], list[tuple[str, str]]] = lambda _c, _s: []
    on_leave_series: Callable[[Connection, int, str, datetime], object] | None = None
    # A new episode of pain reported (after its symptoms were saved): the names of the series
    # that start again, and of those that may only later, with the earliest moment.
    on_new_episode: (
        Callable[[Connection, int, datetime], tuple[list[str], list[tuple[str, datetime]]]] | None
    ) = None
    # The clinic's emergency number, urgent-advice line and family doctor (the warning signs).
    care_lines: Mapping[str, str] = field(default_factory=lambda: dict(warning_signs.UK_LINES))


ACCEPTED = {
    "status": "accepted",
    "message": "If this address can be subscribed, a confirmation email is on its way.",
}
NOT_JSON = "The request body must be a JSON object with the signup's fields."


# Shown at once to whoever ticked a warning sign (the page and the API answer alike): it must
# not wait for an email to be confirmed. General on purpose: it never repeats what was ticked.
def urgent_care(lines: Mapping[str, str]) -> str:
    """The API's ``urgent_care`` answer: the warning signs' two urgent tiers, in the clinic's
    own numbers, from the one table (templates.warning_signs)."""
    return (
        "Some of what you told us can be a sign that a doctor needs to see you quickly. Please "
        "get urgent medical care if you need it, and don't wait for our emails. "
        + warning_signs.text(lines)
    )


# The database could not be reached: nothing was stored, and the client should try again.
RETRY_AFTER_SECONDS = 120
UNAVAILABLE = (
    "We could not take your signup just now: nothing was saved. Please try again in a few minutes."
)


def unavailable_json() -> JSONResponse:
    return JSONResponse(
        {"detail": UNAVAILABLE},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
    )


def unavailable_page() -> HTMLResponse:
    answer = page(
        "Please try again in a few minutes",
        "<p>We could not take your signup just now, and nothing was saved. Please try again "
        "in a few minutes.</p>",
        503,
    )
    answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer


async def answer_at_a_fixed_moment(started: float, step: float) -> None:
    """Wait until the next multiple of ``step`` seconds since ``started`` (at least one): the
    answer's timing then tells nothing about the work done, unless the work outlasted a step, and
    even then only which step it ended in."""
    if step <= 0:
        return
    elapsed = time.monotonic() - started
    await asyncio.sleep(step * max(1, math.ceil(elapsed / step)) - elapsed)


def _client(request: Request) -> tuple[str, str | None]:
    ip = request.client.host if request.client else "unknown"
    return ip, request.headers.get("user-agent")


def router(ports: SubscriberPorts) -> APIRouter:
    r = APIRouter()
    limiter = Throttle(ports.signups_per_minute, 60.0)

    def not_found() -> HTMLResponse:
        return page(
            "Link not recognised", "<p>This link is not valid. Nothing was changed.</p>", 404
        )

    def subscriber_for(conn: Connection, purpose: str, token: str) -> int | None:
        public_id = ports.tokens.read(purpose, token)  # type: ignore[arg-type]
        return store.by_public_id(conn, public_id) if public_id else None

    def send_of(purpose: str, token: str) -> str | None:
        """The email whose link this is (None for links that name no email)."""
        found = ports.tokens.read_link(purpose, token)  # type: ignore[arg-type]
        return found[1] if found else None

    def sign_up(req: SignupRequest, ip: str, agent: str | None) -> None:
        """Store the signup and queue its confirmation email, in one transaction."""
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            confirmation = register(conn, req, now=now, ip=ip, user_agent=agent)
            if confirmation is not None and ports.on_signup is not None:
                ports.on_signup(conn, confirmation, now)

    async def stored(req: SignupRequest, ip: str, agent: str | None, started: float) -> bool:
        """Run :func:`sign_up` and answer at the fixed moment; False when the database could not
        be reached (nothing stored). Any other failure is a fault, and escapes."""
        try:
            await run_in_threadpool(sign_up, req, ip, agent)
        except Exception as exc:
            if not unreachable(exc):
                raise
            # Without the request: it holds personal data.
            log.warning(
                "a signup was refused (503): the database is unreachable (%s)", type(exc).__name__
            )
            return False
        await answer_at_a_fixed_moment(started, ports.signup_seconds)
        return True

    # -- signup ---------------------------------------------------------------------------
    @r.post(
        "/api/subscribers",
        status_code=202,
        responses={
            422: {"description": "Each bad field named in `detail[].loc`; nothing is stored."},
            429: {"description": "Too many signups from this client; try again in a minute."},
            503: {
                "description": "The database cannot be reached; nothing is stored. Try again "
                "after `Retry-After` seconds."
            },
        },
        summary="Sign someone up (double opt-in)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": SignupRequest.model_json_schema()}},
            }
        },
    )
    async def api_signup(request: Request) -> JSONResponse:
        """Emails the address a confirmation link (double opt-in); nothing is sent before it is
        confirmed. The answer is the same whatever we know about the address: new, waiting for
        confirmation, subscribed, unsubscribed or suppressed. When warning signs were ticked the
        answer carries urgent-care advice (`urgent_care`) to show at once. 202 means stored:
        when the database cannot be reached the answer is 503 with `Retry-After`."""
        started = time.monotonic()
        ip, agent = _client(request)
        if limiter.allow(ip):  # seconds to wait: refused
            return JSONResponse(
                {"detail": "Too many signups from your connection. Please try again in a minute."},
                status_code=429,
                headers={"Retry-After": "60"},
            )
        # Validated here rather than by FastAPI so every message reads as plain English.
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return JSONResponse(
                {"detail": [{"loc": ["body"], "msg": NOT_JSON, "type": "json_invalid"}]},
                status_code=422,
            )
        try:
            body = SignupRequest.model_validate(data)
        except ValidationError as exc:
            return JSONResponse({"detail": validation_errors(exc)}, status_code=422)
        if not await stored(body, ip, agent, started):
            return unavailable_json()
        answer = (
            {**ACCEPTED, "urgent_care": urgent_care(ports.care_lines)}
            if has_red_flag(body.symptoms)
            else ACCEPTED
        )
        return JSONResponse(answer, status_code=202)

    @r.get("/assets/signup.js", include_in_schema=False)
    def signup_js() -> Response:
        return Response(
            SIGNUP_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @r.get("/signup", response_class=HTMLResponse, include_in_schema=False)
    def signup_page() -> HTMLResponse:
        return page(
            "Weekly back and neck care emails",
            signup_form(ports.clinic_name, lines=ports.care_lines),
        )

    @r.post("/signup", response_class=HTMLResponse, include_in_schema=False)
    async def signup_submit(request: Request) -> HTMLResponse:
        started = time.monotonic()
        ip, agent = _client(request)
        if limiter.allow(ip):  # seconds to wait: refused
            return page(
                "Please wait a moment",
                "<p>We have had many signups from your connection. Please try again in a "
                "minute.</p>",
                429,
            )
        data = form_to_data(await request.form())
        try:
            req = SignupRequest.model_validate(data)
        except ValidationError as exc:
            return page(
                "Weekly back and neck care emails",
                signup_form(ports.clinic_name, data, field_errors(exc), lines=ports.care_lines),
                422,
            )
        if not await stored(req, ip, agent, started):
            return unavailable_page()
        urgent = (
            '<div class="urgent" role="alert"><p><strong>Please get urgent medical care '
            "now if you need it.</strong> Some of what you told us can be a sign that a doctor "
            "needs to see you quickly. Don't wait for our emails.</p>"
            f"{warning_signs.html(ports.care_lines)}</div>"
            if has_red_flag(req.symptoms)
            else ""
        )
        return page(
            "Check your inbox",
            urgent + "<p>We have sent you an email with a link. Please click it to confirm; "
            "nothing else will be sent until you do.</p>",
        )

    # -- confirmation -----------------------------------------------------------------------
    # GET only shows a button: mail scanners fetch every link in an email, and a GET that
    # confirmed would subscribe people (and apply a stranger's held request) without anyone
    # clicking. The button POSTs to the same URL; no body is needed.
    def expired() -> HTMLResponse:
        return page(
            "Link not recognised",
            "<p>This confirmation link is not valid or has expired. Nothing was changed.</p>",
            404,
        )

    @r.get("/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
    def confirm_page(token: str) -> HTMLResponse:
        subject = ports.tokens.read("confirm", token)
        if subject is None:
            return expired()
        wanted = held.request_id(subject)
        if wanted is not None:  # a request already used or expired: say so before the click
            with ports.db.begin() as conn:
                if not held.is_waiting(conn, wanted, datetime.now(UTC)):
                    return expired()
        form = one_button(
            "Please confirm that you would like weekly back and neck care emails from "
            f"{escape(ports.clinic_name)}.",
            f"/confirm/{token}",
            "Confirm my subscription",
        )
        return page("Confirm your subscription", form)

    @r.post("/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
    def confirm_submit(token: str) -> HTMLResponse:
        now = datetime.now(UTC)
        subject = ports.tokens.read("confirm", token)
        if subject is None:
            return expired()
        with ports.db.begin() as conn:
            sid = confirm(conn, subject, now)
            if sid is None:
                return expired()
            ports.on_confirmed(conn, [sid], now)
        return page(
            "Thank you, you're subscribed",
            "<p>Your first email will arrive soon, at a sensible hour.</p>",
        )

    # -- unsubscribe ------------------------------------------------------------------------
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

    def leave(conn: Connection, sid: int, now: datetime, source: str, send_id: str | None) -> None:
        if store.unsubscribe(conn, sid, now, source=source):
            ports.on_unsubscribed(conn, sid, now, send_id)

    def left_page() -> HTMLResponse:
        return page(
            "You are unsubscribed",
            f"<p>You will not get any more emails from {escape(ports.clinic_name)}. "
            "Sorry to see you go, and we hope your back feels better soon.</p>",
        )

    @r.post("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        # The body is read but not required to be exact: a one-click POST, or our own form.
        await request.body()
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            sid = subscriber_for(conn, "unsubscribe", token)
            if sid is None:
                return not_found()
            leave(conn, sid, now, "one-click", send_of("unsubscribe", token))
        return left_page()

    # -- preference centre ------------------------------------------------------------------
    def preferences_in(conn: Connection, token: str, sid: int, message: str = "") -> HTMLResponse:
        person = store.profiles(conn, [sid])[sid]
        if person.status == store.UNSUBSCRIBED:
            return page(
                "Your email preferences",
                "<p>You are unsubscribed and will get no emails from us. To hear from us again, "
                'please <a href="/signup">sign up</a>.</p>',
            )
        body = preferences_form(
            token,
            clinic_name=ports.clinic_name,
            symptoms=person.symptoms,
            paused_until=person.paused_until,
            now=datetime.now(UTC),
            message=message,
            series=ports.series_of(conn, sid),
        )
        return page("Your email preferences", body)

    @r.get("/preferences/{token}", response_class=HTMLResponse, include_in_schema=False)
    def preferences_page(token: str) -> HTMLResponse:
        with ports.db.begin() as conn:
            sid = subscriber_for(conn, "preferences", token)
            if sid is None:
                return not_found()
            return preferences_in(conn, token, sid)

    @r.post("/preferences/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def preferences_submit(token: str, request: Request) -> HTMLResponse:
        form = await request.form()
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            sid = subscriber_for(conn, "preferences", token)
            if sid is None:
                return not_found()
            action = str(form.get("action") or "save")
            if action == "leave":
                leave(conn, sid, now, "preferences", send_of("preferences", token))
                return left_page()
            if action.startswith("leave-series:"):
                wanted = action.removeprefix("leave-series:")
                names = dict(ports.series_of(conn, sid))
                if wanted not in names or ports.on_leave_series is None:
                    return not_found()
                ports.on_leave_series(conn, sid, wanted, now)
                return preferences_in(
                    conn, token, sid, f"You left \u201c{names[wanted]}\u201d. Nothing else changed."
                )
            chosen = {str(c) for c in form.getlist("symptoms")}
            pause = str(form.get("pause") or "keep")
            if any(c not in BY_CODE for c in chosen) or pause not in {
                "keep",
                "0",
                *map(str, PAUSE_WEEKS),
            }:
                return page(
                    "Your email preferences",
                    "<p>Something in the form was not recognised. Nothing was changed. "
                    f'<a href="/preferences/{escape(token)}">Try again</a>.</p>',
                    422,
                )
            episode = form.get("new_episode") == "yes"
            message = _save_preferences(conn, ports, sid, chosen, pause, now, episode=episode)
            return preferences_in(conn, token, sid, message)

    return r


def _save_preferences(
    conn: Connection,
    ports: SubscriberPorts,
    sid: int,
    chosen: set[str],
    pause: str,
    now: datetime,
    *,
    episode: bool = False,
) -> str:
    person = store.profiles(conn, [sid])[sid]
    if person.status == store.UNSUBSCRIBED:
        return "You are unsubscribed; nothing was changed."
    if pause != "keep":
        weeks = int(pause)
        changes.set_pause(conn, sid, now + timedelta(weeks=weeks) if weeks else None, now)
    # Warning signs are not edited here: they were reported for safety and stay on record.
    changed = changes.change_symptoms(conn, sid, chosen, now, source="preferences")
    if episode and ports.on_new_episode is not None and person.status == store.CONFIRMED:
        started, later = ports.on_new_episode(conn, sid, now)
        return "Your choices are saved. " + _episode_message(started, later)
    if changed is not None and person.status == store.CONFIRMED:
        ports.on_confirmed(conn, [sid], now)  # enrols in what the new symptoms select
    return "Your choices are saved."


def _episode_message(started: list[str], later: list[tuple[str, datetime]]) -> str:
    """What a reported new episode did, in the person's words (names of series, dates)."""
    parts = []
    if started:
        names = ", ".join(f"\u201c{n}\u201d" for n in started)
        parts.append(
            f"Sorry your pain is back. {names} starts again from week 1; "
            "your first email comes at a sensible hour, at most one a week."
        )
    for name, at in later:
        parts.append(f"\u201c{name}\u201d can start again from {at:%d %B %Y}.")
    if not parts:
        parts.append("Your emails carry on as before.")
    return " ".join(parts)
