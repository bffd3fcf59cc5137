"""The outbox (what the ``outbox`` transport stored instead of sending): a list, one message
rendered in a sandboxed frame (no scripts, no same-origin access), and its raw MIME source."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.auth import Staff
from console.people import services_of
from console.ports import ConsolePorts
from console.render import error_page, page
from staff import audit
from storage import utcnow

LIST_LIMIT = 200


def _part(msg: Message, content_type: str) -> str | None:
    for part in msg.walk():
        if part.get_content_type() == content_type and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return None


def router(ports: ConsolePorts) -> APIRouter:
    r = APIRouter()

    @r.get("/admin/outbox", include_in_schema=False)
    def listing(request: Request, session: Staff) -> Response:
        messages = services_of(ports).outbox_list(LIST_LIMIT)
        return page(
            request,
            "outbox/list.html",
            {"title": "Outbox", "messages": messages, "limit": LIST_LIMIT},
        )

    @r.get("/admin/outbox/{message_id}", include_in_schema=False)
    def message(request: Request, message_id: int, session: Staff) -> Response:
        found = services_of(ports).outbox_message(message_id)
        if found is None:
            return error_page(
                request, "No such message", "The outbox holds no message with this number.", 404
            )
        raw = bytes(found["message"])
        parsed = message_from_bytes(raw)
        with ports.db.begin() as conn:
            audit.record(conn, session.user, "outbox.view", "outbox", str(message_id), utcnow())
        return page(
            request,
            "outbox/message.html",
            {
                "title": "Outbox message",
                "m": found,
                "html": _part(parsed, "text/html"),
                "text": _part(parsed, "text/plain"),
                "raw": raw.decode("utf-8", errors="replace"),
                "headers": [(k, str(v)) for k, v in parsed.items()],
            },
        )

    return r
