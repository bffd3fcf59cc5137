"""Errors of the versioned API as RFC 9457 problems (``application/problem+json``).

Every error under ``/api/v1/`` has this shape, whoever raises it: a route (:class:`Problem`),
FastAPI's request validation (422, with each bad field in ``errors``), an unknown path or method
(404, 405), the body limit (413) or a fault (500, app/errors.py). ``type`` is
``about:blank`` (the status says it all) and ``title`` the status's phrase; ``detail`` says what
to do in words, never repeating a value that was sent (it may be personal).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import RequestRefused

PROBLEM_PREFIX = "/api/v1/"
PROBLEM_JSON = "application/problem+json"


def problem_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}


def problem(
    status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return Response(
        orjson.dumps(problem_body(status, detail, **extra)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


class Problem(RequestRefused, Exception):
    """Raised by a route or a dependency of the API: answered as a problem with ``status``."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


# The OpenAPI description of a problem (every error response of the API names it).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def described(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}


def _in_api(request: Request) -> bool:
    return request.url.path.startswith(PROBLEM_PREFIX)


def install_handlers(app: FastAPI) -> None:
    """Answer the API's errors as problems; elsewhere FastAPI's own answers are kept."""

    async def on_problem(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem(exc.status, exc.detail, headers=exc.headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not _in_api(request):
            return await request_validation_exception_handler(request, exc)
        errors = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")).removeprefix("Value error, "),
                "type": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        return problem(422, "The request is not valid: see errors[].", errors=errors)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not _in_api(request):
            return await http_exception_handler(request, exc)
        detail = {
            404: "There is nothing at this address.",
            405: "This address does not take that method.",
        }.get(exc.status_code, str(exc.detail))
        return problem(exc.status_code, detail, headers=dict(exc.headers or {}))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
