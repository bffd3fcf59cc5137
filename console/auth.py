"""The guard every ``/admin`` route runs behind: a valid session, the CSRF token on writes, and
a role where one is needed.

- No valid session: 303 to ``/admin/login`` (401 for JSON and htmx requests), never content.
- A write (POST, PUT, PATCH, DELETE) without the session's CSRF token (form field
  ``csrf_token`` or header ``X-CSRF-Token``): 403, before any handler runs, so nothing changes.
- A role below the one a route needs: 403.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from console.deps import Db
from console.errors import Forbidden, NotFound, SignInRequired
from staff import Role, at_least, sessions
from staff.roles import OPS
from staff.sessions import Session
from storage import Database, utcnow

SESSION_COOKIE = "clinicmail_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_PATH = "/admin/login"


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return (
        request.url.path.startswith("/admin/api/")
        or request.url.path == "/openapi.json"
        or "application/json" in request.headers.get("content-type", "")
        or ("application/json" in accept and "text/html" not in accept)
        or request.headers.get("hx-request") == "true"
    )


def safe_next(target: str | None) -> str | None:
    """A same-site path to return to after signing in, or None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if not (target.startswith("/admin") or target in ("/docs", "/redoc")):
        return None
    return target


async def sign_in_required(request: Request, _exc: Exception) -> Response:
    if wants_json(request):
        # No redirect for htmx either: the page stays, with what was typed on it
        # (console.js says the session ended and offers signing in in a new tab).
        return JSONResponse({"detail": "sign in required"}, status_code=401)
    target = LOGIN_PATH
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method == "GET" and safe_next(here) and request.url.path != "/admin":
        target += "?next=" + quote(here, safe="/")
    return RedirectResponse(target, status_code=303)


async def forbidden(request: Request, exc: Exception) -> Response:
    reason = exc.reason if isinstance(exc, Forbidden) else "forbidden"
    if wants_json(request):
        return JSONResponse({"detail": reason}, status_code=403)
    from console.render import error_page

    return error_page(request, "Not allowed", reason, 403)


async def not_found(request: Request, exc: Exception) -> Response:
    from console.render import error_page

    if not isinstance(exc, NotFound):
        return error_page(request, "Not found", "There is nothing here.", 404)
    return error_page(request, exc.title, exc.message, 404)


def current(request: Request, db: Database) -> Session | None:
    """The request's live session, or None. Cached on the request."""
    if hasattr(request.state, "staff_session"):
        cached: Session | None = request.state.staff_session
        return cached
    with db.begin() as conn:
        found = sessions.resolve(conn, request.cookies.get(SESSION_COOKIE), utcnow())
    request.state.staff_session = found
    return found


async def presented_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def signed_in(request: Request, db: Db) -> Session:
    """The dependency every signed-in route runs: returns the session or raises."""
    session = current(request, db)
    if session is None:
        raise SignInRequired
    if request.method in WRITES and not session.csrf_ok(await presented_csrf(request)):
        raise Forbidden(
            "This form has expired or did not come from the console. Reload the page and try again."
        )
    return session


# Annotate a route's parameter with this to put the route behind the guard.
Staff = Annotated[Session, Depends(signed_in)]


def require_role(session: Session, role: Role) -> None:
    if not at_least(session.user.role, role):
        raise Forbidden(f"This needs the {role} role; you are signed in as {session.user.role}.")


def ops_only(session: Staff) -> Session:
    """The guard, then the ``ops`` role."""
    require_role(session, OPS)
    return session


# A route's parameter annotated with this runs behind the guard and needs the ops role.
OpsStaff = Annotated[Session, Depends(ops_only)]
