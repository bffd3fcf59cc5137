"""The interactive API docs (``/docs``, ``/openapi.json``), for signed-in staff only.

FastAPI's own doc routes are switched off in the app and served here behind the guard. Swagger
UI's script and stylesheet are vendored in ``console/static`` (swagger-ui-dist from the npm
registry, version in ``home.STATIC_FILES``) and started by ``docs.js``: nothing is loaded from a
CDN and no inline script runs, so the same Content-Security-Policy as every page applies.
``/redoc`` (the second viewer, also from a CDN) now leads to ``/docs``.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from console.auth import Staff

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="/admin/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/admin/static/swagger-ui-bundle.js"></script>
<script src="/admin/static/docs.js"></script>
</body>
</html>
"""


router = APIRouter()


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, session: Staff) -> JSONResponse:
    return JSONResponse(request.app.openapi(), headers={"Cache-Control": "no-store"})


@router.get("/docs", include_in_schema=False)
def docs(request: Request, session: Staff) -> HTMLResponse:
    title = escape(f"{request.app.title} API")
    return HTMLResponse(_PAGE.format(title=title), headers={"Cache-Control": "no-store"})


@router.get("/redoc", include_in_schema=False)
def redoc(session: Staff) -> Response:
    return RedirectResponse("/docs", status_code=308)
