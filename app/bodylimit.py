"""A limit on request bodies, enforced while they stream in (chunked uploads included).

Every route reads its body through ASGI ``receive``; this middleware counts the bytes as they
arrive and answers ``413`` as soon as a body passes its route's limit, so a stranger posting
hundreds of megabytes costs us at most the limit, not the body. A declared ``Content-Length``
over the limit is refused before a byte is read.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import send_error
from core.errors import RequestRefused

KIB = 1024


class BodyTooLarge(RequestRefused):
    """Raised inside ``receive`` when a body passes its limit; turned into a 413 here."""


class BodyLimit:
    """``limits`` is ``(path prefix, bytes)`` pairs, the longest matching prefix wins;
    ``default`` covers every other path."""

    def __init__(self, app: ASGIApp, *, default: int, limits: Sequence[tuple[str, int]] = ()):
        self.app = app
        self.default = default
        self.limits = sorted(limits, key=lambda pair: len(pair[0]), reverse=True)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, send, limit)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await _too_large(scope, send, limit)


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    await send_error(
        scope,
        send,
        413,
        f"The request body is too large (at most {limit // KIB} KiB here).",
        headers=[(b"connection", b"close")],
    )
