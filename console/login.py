"""Sign in and sign out.

Before any password is checked, two rate limits apply (:mod:`console.throttle`): per client
address and per account address; an attempt over either is answered 429 with ``Retry-After``
and costs no hash. The lockout itself is :func:`staff.accounts.sign_in`'s.

The login form carries a CSRF token too (double submit: the same random value in a short-lived
cookie and in the form), so another site cannot sign a browser into an account of its choosing.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.auth import LOGIN_PATH, SESSION_COOKIE, Staff, safe_next
from console.deps import Ports
from console.render import page, stylesheet
from core.throttle import Throttle
from staff import accounts, audit, sessions
from staff.passwords import PasswordsBusy
from staff.sessions import ABSOLUTE_TIMEOUT
from storage import utcnow
from subscribers.addresses import InvalidAddress, normalize

LOGIN_COOKIE = "clinicmail_login"
HOME = "/admin"
PER_CLIENT = (30, 60.0)  # sign-in attempts per client address per minute
PER_ACCOUNT = (10, 60.0)  # sign-in attempts per account address per minute
LOCKED_MESSAGE = (
    "Too many failed attempts: this account is locked for 15 minutes. "
    "Try again later or ask an ops colleague to unlock it or reset your password."
)
SLOW_DOWN = "Too many sign-in attempts. Please wait a minute and try again."


def _account_key(email: str) -> str:
    try:
        return normalize(email)[1]
    except InvalidAddress:
        return email.strip().lower()[:320]


@dataclass
class Limits:
    """The two sign-in rate limits of one app (kept on the app, so each app counts alone)."""

    by_client: Throttle = field(default_factory=lambda: Throttle(*PER_CLIENT))
    by_account: Throttle = field(default_factory=lambda: Throttle(*PER_ACCOUNT))


def limits(request: Request) -> Limits:
    state = request.app.state
    if not hasattr(state, "console_login_limits"):
        state.console_login_limits = Limits()
    found: Limits = state.console_login_limits
    return found


def form(
    request: Request,
    ports: Ports,
    *,
    error: str | None = None,
    status: int = 200,
    retry_after: float | None = None,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        {
            "title": "Sign in",
            "login_token": token,
            "error": error,
            "next": safe_next(request.query_params.get("next")) or "",
            "inline_css": stylesheet(),
        },
        status=status,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=ports.secure_cookies,
    )
    return response


router = APIRouter()


@router.get(LOGIN_PATH, include_in_schema=False)
def login_form(request: Request, ports: Ports) -> Response:
    return form(request, ports)


@router.post(LOGIN_PATH, include_in_schema=False)
def login(
    request: Request,
    ports: Ports,
    rate: Annotated[Limits, Depends(limits)],
    email: str = Form("", max_length=320),
    password: str = Form("", max_length=1024),
    csrf_token: str = Form("", max_length=128),
    next: str = Form("", max_length=2000),
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return form(
            request, ports, error="The sign-in form had expired. Please try again.", status=403
        )
    client = request.client.host if request.client else ""
    wait = rate.by_client.allow(client) or rate.by_account.allow(_account_key(email))
    if wait:
        return form(request, ports, error=SLOW_DOWN, status=429, retry_after=wait)
    now = utcnow()
    try:
        result = accounts.sign_in(ports.db, email, password, now)
    except PasswordsBusy:
        return form(request, ports, error=SLOW_DOWN, status=429, retry_after=2)
    if result.user is None:
        if result.locked_until is not None:
            wait = (result.locked_until - now).total_seconds()
            return form(request, ports, error=LOCKED_MESSAGE, status=429, retry_after=wait)
        if result.busy:
            return form(request, ports, error=SLOW_DOWN, status=429, retry_after=60)
        message = "That email and password do not match an active account."
        return form(request, ports, error=message, status=401)
    with ports.db.begin() as conn:
        token = sessions.start(
            conn, result.user, now, replacing=request.cookies.get(SESSION_COOKIE)
        )
        audit.record(conn, result.user, "staff.sign_in", "staff", str(result.user.id), now)
    response = RedirectResponse(safe_next(next) or HOME, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ABSOLUTE_TIMEOUT.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=ports.secure_cookies,
    )
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response


@router.post("/admin/logout", include_in_schema=False)
def logout(request: Request, session: Staff, ports: Ports) -> Response:
    now = utcnow()
    with ports.db.begin() as conn:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            sessions.end(conn, token)
        audit.record(conn, session.user, "staff.sign_out", "staff", str(session.user.id), now)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=ports.secure_cookies, httponly=True)
    return response
