"""What a visitor sees when something goes wrong on our side, and what the log says about it.

This is the one place an error becomes an HTTP answer (the command line's is
``app/cli/errors.py``). A route answers the errors it expects itself: a form shows its
messages, the console turns ``SignInRequired`` and ``Forbidden`` into the sign-in page and a
403 page, the body limit answers 413. Any exception that escapes a route, a
:class:`~core.errors.ClinicmailError` (say a ``DatabaseError``) or not, is our fault and answers
500 with :data:`SORRY`: a plain page (HTML routes) or a small JSON body (the API, webhooks,
metrics), never a traceback, "Internal Server Error" or the error's own message (it is written
for an operator and may name a person). The log gets one ERROR line with the exception's
traceback, through the same redaction as every other line (:mod:`app.logs`), and with the
route's template instead of the URL: link paths carry signed tokens.
"""

from __future__ import annotations

import logging
from html import escape

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON, PROBLEM_PREFIX, problem_body

log = logging.getLogger("clinicmail.http")

# Paths answered with JSON; the rest are pages a person sees in a browser.
JSON_PREFIXES = ("/api/", "/webhooks/", "/metrics", "/healthz", "/openapi.json")
SORRY = (
    "Sorry, something went wrong on our side. Nothing you did caused it; please try again later."
)


def wants_json(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    if path.startswith(JSON_PREFIXES):
        return True
    accept: bytes = dict(scope.get("headers") or []).get(b"accept", b"")
    return accept.startswith(b"application/json")


async def send_error(
    scope: Scope,
    send: Send,
    status: int,
    message: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer ``status`` with ``message``: an RFC 9457 problem under ``/api/v1/``, JSON
    ``{"detail": message}`` elsewhere in the API, or a plain page."""
    if str(scope.get("path", "")).startswith(PROBLEM_PREFIX):
        body = orjson.dumps(problem_body(status, message))
        kind = PROBLEM_JSON.encode("ascii")
    elif wants_json(scope):
        body = orjson.dumps({"detail": message})
        kind = b"application/json"
    else:
        title = "Something went wrong" if status >= 500 else "We could not accept that"
        body = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title></head><body><main><h1>{escape(title)}</h1>"
            f'<p>{escape(message)}</p><p><a href="/">Back to the start</a></p></main></body></html>'
        ).encode()
        kind = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ErrorPages:
    """The outermost middleware: any exception a route lets escape becomes a 500 answer and
    one redacted log line (and is not re-raised, so the server logs no second copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            log.exception("unexpected error answering %s %s", scope.get("method"), route)
            if not started:
                await send_error(scope, send, 500, SORRY)
