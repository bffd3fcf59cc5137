"""The interactive API docs (``/docs``, ``/redoc``, ``/openapi.json``), for signed-in staff only.

FastAPI's own doc routes are switched off in the app and served here behind the guard.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from console.auth import Staff
from console.ports import ConsolePorts


def router(app: FastAPI, ports: ConsolePorts) -> APIRouter:
    r = APIRouter()

    @r.get("/openapi.json", include_in_schema=False)
    def openapi(session: Staff) -> JSONResponse:
        return JSONResponse(app.openapi(), headers={"Cache-Control": "no-store"})

    @r.get("/docs", include_in_schema=False)
    def docs(session: Staff) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")

    @r.get("/redoc", include_in_schema=False)
    def redoc(session: Staff) -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} API")

    return r
