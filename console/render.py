"""Server-rendered pages: one autoescaping Jinja2 environment over ``console/templates``."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from console.words import file_title

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
# What a change just did, carried across its redirect to the next page shown (one page only).
FLASH_COOKIE = "clinicmail_done"


def local_time(value: datetime | str | None, zone: ZoneInfo | None, *, day: bool = True) -> str:
    """A moment as staff read it: in the clinic's time zone, to the minute, with the zone's
    abbreviation ("07 Dec 2026 10:00 GMT"); ISO text (from a JSON document) is read first."""
    if not value:
        return "—"
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone or UTC)
    return local.strftime("%d %b %Y %H:%M %Z" if day else "%H:%M %Z")


@pass_context
def _when(context: Context, value: datetime | str | None) -> str:
    return local_time(value, context.get("clinic_zone"))


@pass_context
def _clock(context: Context, value: datetime | str | None) -> str:
    return local_time(value, context.get("clinic_zone"), day=False)


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
    env.filters["clock"] = _clock
    env.filters["title_of"] = file_title
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
    ports = getattr(request.app.state, "console_ports", None)
    full = {
        "clinic_zone": _zone(ports),
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


def _zone(ports: Any) -> ZoneInfo:
    """The clinic's time zone (it follows the clinic's settings); UTC for a bare console."""
    try:
        zone = ports.clinic_zone() if ports is not None else None
    except Exception:  # a settings read that fails must not take every page down with it
        zone = None
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo("UTC")


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
