"""How a console request is refused, each answered by :mod:`console.web`'s handlers.

- :class:`SignInRequired`: no valid session (303 to the sign-in page; 401 for JSON and htmx).
- :class:`Forbidden`: a role too low, or a write without the session's CSRF token (403). Never
  for a problem with what was typed: that is the route's own 422 page, which keeps the input.
- :class:`NotFound`: a record that does not exist (404).
"""

from __future__ import annotations

from core.errors import RequestRefused


class SignInRequired(RequestRefused):
    """No valid session."""


class Forbidden(RequestRefused):
    """Signed in, but this request may not proceed (no CSRF token, or a role too low)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(RequestRefused):
    """A record the console was asked for that does not exist: ``title`` and ``message`` say
    what was looked for."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title, self.message = title, message
