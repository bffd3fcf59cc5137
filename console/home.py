"""The console's home page, a small JSON API about the signed-in account, and the catch-all
that keeps unknown ``/admin`` paths behind the sign-in too."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from campaigns.review import is_reviewer
from console import dashboard
from console.auth import Staff
from console.deps import Ports
from console.render import STATIC, error_page

STATIC_FILES = {
    "console.css": "text/css",
    "htmx.min.js": "text/javascript",
    "console.js": "text/javascript",
    "nav.js": "text/javascript",
    # Swagger UI 5.17.14 from the npm registry (swagger-ui-dist), served from our own origin.
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "docs.js": "text/javascript",
}


router = APIRouter()


@router.get("/admin", include_in_schema=False)
def home(request: Request, session: Staff, ports: Ports) -> Response:
    return dashboard.render(request, ports)  # the home page is the dashboard


@router.get("/admin/api/me")
def me(session: Staff) -> JSONResponse:
    """The signed-in staff member: address, role, what the role allows, and the session's
    CSRF token (for a page whose session was renewed in another tab; no other site can read
    this answer)."""
    user = session.user
    return JSONResponse(
        {
            "email": user.email,
            "role": user.role,
            "may_approve": is_reviewer(user.role),
            "csrf_token": session.csrf_token,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/admin/static/{name}", include_in_schema=False)
def static(name: str, session: Staff) -> Response:
    if name not in STATIC_FILES:
        return JSONResponse({"detail": "not found"}, status_code=404)
    return FileResponse(
        STATIC / name,
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "private, max-age=3600"},
    )


# Mounted last: any other ``/admin`` path, any method, answers only after the guard.
catch_all = APIRouter()


@catch_all.api_route(
    "/admin/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
def unknown(request: Request, rest: str, session: Staff) -> Response:
    return error_page(request, "Not found", "There is no console page at this address.", 404)
