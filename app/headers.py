"""Security headers on every HTTP answer, public pages, the console, the API and errors alike.

- ``Content-Security-Policy``: scripts only from our own origin (no inline script, no
  ``eval``); styles from our origin or inline (the email previews and the pages' own
  ``style`` attributes); images from our origin, ``data:`` and any https host (a clinic's logo
  in an email preview); no plugins; forms post only to us; no page may be framed by another
  site (``frame-ancestors 'none'``), while the console's preview iframe (``srcdoc``, sandboxed
  without scripts) keeps working because it is a document of our own.
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` and
  ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``.
- ``Strict-Transport-Security`` when ``CLINICMAIL_BASE_URL`` is https (one year).

A route that sets one of these headers itself keeps its own value.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; font-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """ASGI middleware adding the headers above to every response."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        headers = [
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
        ]
        if https:
            headers.append((b"strict-transport-security", HSTS.encode()))
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                present = {name.lower() for name, _ in raw}
                raw += [(n, v) for n, v in self.headers if n not in present]
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, with_headers)
