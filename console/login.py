"""Sign in and sign out.

The login form carries a CSRF token too (double submit: the same random value in a short-lived
cookie and in the form), so another site cannot sign a browser into an account of its choosing.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.auth import LOGIN_PATH, SESSION_COOKIE, Staff, safe_next
from console.ports import ConsolePorts
from console.render import page, stylesheet
from staff import accounts, audit, sessions
from staff.sessions import ABSOLUTE_TIMEOUT
from storage import utcnow

LOGIN_COOKIE = "clinicmail_login"
HOME = "/admin"


def router(ports: ConsolePorts) -> APIRouter:
    r = APIRouter()
    secure = ports.secure_cookies

    def form(request: Request, *, error: str | None = None, status: int = 200) -> Response:
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
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=3600,
            path=LOGIN_PATH,
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        return response

    @r.get(LOGIN_PATH, include_in_schema=False)
    def login_form(request: Request) -> Response:
        return form(request)

    @r.post(LOGIN_PATH, include_in_schema=False)
    def login(
        request: Request,
        email: str = Form("", max_length=320),
        password: str = Form("", max_length=1024),
        csrf_token: str = Form("", max_length=128),
        next: str = Form("", max_length=2000),
    ) -> Response:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
            return form(
                request,
                error="The sign-in form had expired. Please try again.",
                status=403,
            )
        now = utcnow()
        with ports.db.begin() as conn:
            result = accounts.sign_in(conn, email, password, now)
            if result.user is None:
                token = None
            else:
                token = sessions.start(
                    conn, result.user, now, replacing=request.cookies.get(SESSION_COOKIE)
                )
                audit.record(conn, result.user, "staff.sign_in", "staff", str(result.user.id), now)
        if token is None:
            message = "That email and password do not match an active account."
            if result.locked_until is not None:
                message = (
                    "Too many failed attempts: this account is locked for 15 minutes. "
                    "Try again later or ask an ops colleague to reset your password."
                )
            return form(request, error=message, status=401 if result.locked_until is None else 429)
        response = RedirectResponse(safe_next(next) or HOME, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(ABSOLUTE_TIMEOUT.total_seconds()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure,
        )
        response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
        return response

    @r.post("/admin/logout", include_in_schema=False)
    def logout(request: Request, session: Staff) -> Response:
        now = utcnow()
        with ports.db.begin() as conn:
            token = request.cookies.get(SESSION_COOKIE)
            if token:
                sessions.end(conn, token)
            audit.record(conn, session.user, "staff.sign_out", "staff", str(session.user.id), now)
        response = RedirectResponse(LOGIN_PATH, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True)
        return response

    return r
