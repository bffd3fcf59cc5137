"""The outbox (what the ``outbox`` transport stored instead of sending): a list, one message
rendered in a sandboxed frame (no scripts, no same-origin access), and its raw MIME source.

Looking is not engagement: the message is shown with its tracking taken out (no open pixel,
each tracked link replaced by where it leads, :func:`engagement.tracking.untracked`), so
viewing it or clicking in it never counts as an open or a click.
"""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.auth import Staff
from console.deps import Ports, Svc
from console.render import error_page, page
from engagement.tracking import untracked
from staff import audit
from storage import utcnow

LIST_LIMIT = 100


def _part(msg: Message, content_type: str) -> str | None:
    for part in msg.walk():
        if part.get_content_type() == content_type and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return None


router = APIRouter()


@router.get("/admin/outbox", include_in_schema=False)
def listing(request: Request, session: Staff, services: Svc, before: str = "") -> Response:
    """Newest first, a page at a time; ``before`` (the last id shown) is the keyset cursor."""
    cursor = int(before) if before.isdigit() else None
    messages = services.outbox_list(LIST_LIMIT + 1, cursor)
    more = len(messages) > LIST_LIMIT
    messages = messages[:LIST_LIMIT]
    return page(
        request,
        "outbox/list.html",
        {
            "title": "Outbox",
            "messages": messages,
            "limit": LIST_LIMIT,
            "next_url": f"/admin/outbox?before={messages[-1]['id']}" if more else "",
            "first_url": "/admin/outbox" if cursor is not None else "",
        },
    )


@router.get("/admin/outbox/{message_id}", include_in_schema=False)
def message(
    request: Request, message_id: int, session: Staff, ports: Ports, services: Svc
) -> Response:
    found = services.outbox_message(message_id)
    if found is None:
        return error_page(
            request, "No such message", "The outbox holds no message with this number.", 404
        )
    raw = bytes(found["message"])
    parsed = message_from_bytes(raw)
    html, text = _part(parsed, "text/html"), _part(parsed, "text/plain")
    with ports.db.begin() as conn:
        if html is not None:
            html = untracked(conn, html, ports.base_url, is_html=True)
        if text is not None:
            text = untracked(conn, text, ports.base_url, is_html=False)
        audit.record(conn, session.user, "outbox.view", "outbox", str(message_id), utcnow())
    return page(
        request,
        "outbox/message.html",
        {
            "title": "Outbox message",
            "m": found,
            "html": html,
            "text": text,
            "raw": raw.decode("utf-8", errors="replace"),
            "headers": [(k, str(v)) for k, v in parsed.items()],
        },
    )
