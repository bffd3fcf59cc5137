"""A fake SendGrid that can be told to refuse every request with one answer (a 401 for a day),
and that answers ``GET /v3/scopes`` like SendGrid (``clinicmail doctor``). (No tests here.)"""

from __future__ import annotations

import json
import threading

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support.sendgrid import FakeSendGrid

UNAUTHORIZED = '{"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked"}]}'
UNVERIFIED = (
    '{"errors":[{"field":"from","message":"The from address does not match a verified '
    'Sender Identity. Mail cannot be sent until this error is resolved."}]}'
)


class FaultySendGrid(FakeSendGrid):
    """While ``refuse`` is set, every /v3/mail/send gets that (status, body); ``scopes`` is what
    ``GET /v3/scopes`` lists for the key ``good_key`` (any other key: 401)."""

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.refuse: tuple[int, str] | None = None
        self.stall: threading.Event | None = None  # while set: answer nothing until released
        self.refused = 0
        self.good_key = "SG.test-key"
        self.scopes = ["mail.send", "scopes.read"]
        self.scope_calls: list[dict[str, str]] = []
        server.expect_request("/v3/scopes", method="GET").respond_with_handler(self.scopes_of)

    def handle(self, request: Request) -> Response:
        if self.stall is not None:  # the client times out: the request left, no answer came
            self.stall.wait(timeout=30)
            return Response(status=202)
        if self.refuse is not None:
            self.refused += 1
            status, body = self.refuse
            return Response(body, status=status, content_type="application/json")
        return super().handle(request)

    def scopes_of(self, request: Request) -> Response:
        self.scope_calls.append(dict(request.headers))
        if request.headers.get("Authorization") != f"Bearer {self.good_key}":
            return Response(UNAUTHORIZED, status=401, content_type="application/json")
        return Response(json.dumps({"scopes": self.scopes}), content_type="application/json")

    def steps_by_recipient(self) -> dict[str, list[str]]:
        """Recipient → the step ids they were sent, in order."""
        out: dict[str, list[str]] = {}
        for body in self.requests:
            step = body["custom_args"]["step_id"]
            for p in body["personalizations"]:
                out.setdefault(p["to"][0]["email"], []).append(step)
        return out

    def order(self) -> list[tuple[str, str]]:
        """(campaign id, step id) of each accepted request, in order."""
        return [
            (b["custom_args"]["campaign_id"], b["custom_args"]["step_id"]) for b in self.requests
        ]
