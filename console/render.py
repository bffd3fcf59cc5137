"""Server-rendered pages: one autoescaping Jinja2 environment over ``console/templates``."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
# What a change just did, carried across its redirect to the next page shown (one page only).
FLASH_COOKIE = "clinicmail_done"


def _when(value: datetime | None) -> str:
    return value.strftime("%d %b %Y %H:%M UTC") if value else "—"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env


@cache
def stylesheet() -> str:
    return (STATIC / "console.css").read_text(encoding="utf-8")


def page(
    request: Request, name: str, context: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    """Render a page; the signed-in session (if any) and its CSRF token are always available."""
    session = getattr(request.state, "staff_session", None)
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))[:300] if session else ""
    banner_of = getattr(request.app.state, "console_banner", None) if session else None
    full = {
        "banner": banner_of() if banner_of is not None else None,
        "session": session,
        "user": session.user if session else None,
        "csrf_token": session.csrf_token if session else "",
        "path": request.url.path,
        "flash": flash,
        **context,
    }
    html = environment().get_template(name).render(full)
    # Staff pages hold personal and health data: never cached, never framed elsewhere.
    headers = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }
    response = HTMLResponse(html, status_code=status, headers=headers)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/admin")
    return response


def flash(response: Response, message: str) -> Response:
    """Say ``message`` on the next console page shown (after this redirect)."""
    response.set_cookie(
        FLASH_COOKIE,
        quote(message[:300]),
        max_age=120,
        path="/admin",
        httponly=True,
        samesite="strict",
    )
    return response


def error_page(request: Request, title: str, message: str, status: int) -> HTMLResponse:
    """The console's error page: what was not done and why."""
    return page(request, "error.html", {"title": title, "message": message}, status=status)
