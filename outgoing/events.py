"""The events a clinic's other systems can hear about, and :func:`emit`, which queues one.

Each payload follows the Standard Webhooks shape, ``{"type", "timestamp", "data"}``, and its
``data`` names people by their opaque ``subscriber_id`` only (the receiver fetches the person
through ``GET /api/v1/subscribers/{id}`` with its own key): never an address, a name or a
symptom.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select

from core.errors import InputError
from outgoing.tables import PENDING, webhook_deliveries, webhook_endpoints
from storage.sql import dialect_insert

RED_FLAG = "subscriber.red_flag"
CHECKIN_WORSE = "checkin.worse"
UNSUBSCRIBED = "subscriber.unsubscribed"
COMPLAINED = "subscriber.complained"
GOAL_REACHED = "goal.reached"
ERASED = "subscriber.erased"

# Each event type with what it means (docs/api.md lists the same).
EVENT_TYPES: dict[str, str] = {
    RED_FLAG: "a confirmed subscriber reported warning signs (the safety email is queued)",
    CHECKIN_WORSE: "a check-in was answered 'worse'",
    UNSUBSCRIBED: "a subscriber unsubscribed (a link, the preference centre, the API, SendGrid)",
    COMPLAINED: "a subscriber reported an email as spam",
    GOAL_REACHED: "a goal event (e.g. booked) arrived for a subscriber in a series with that goal",
    ERASED: "a subscriber was erased; the id will not be found again",
}
# Other spellings accepted wherever staff type event types (``_`` and ``-`` alike).
ALIASES = {
    **{name: RED_FLAG for name in ("red-flag", "redflag", "red-flag-signup", "signup.red-flag")},
    **{name: CHECKIN_WORSE for name in ("worse", "checkin-worse", "check-in.worse")},
    **{name: UNSUBSCRIBED for name in ("unsubscribe", "unsubscribed", "subscriber.unsubscribe")},
    **{name: COMPLAINED for name in ("complaint", "complained", "spam-report", "spamreport")},
    **{name: GOAL_REACHED for name in ("goal", "goal-reached", "goal.reached")},
    **{name: ERASED for name in ("erase", "erased", "erasure", "subscriber.erase")},
}


class UnknownEventType(InputError, ValueError):
    """An event type that is not one of :data:`EVENT_TYPES` (nor an alias)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown webhook event {name!r}: use {', '.join(EVENT_TYPES)} (or all)")


def event_types(names: list[str]) -> list[str]:
    """The canonical event types for ``names`` (aliases and ``all`` allowed), in a stable
    order; raises :class:`UnknownEventType` naming the first unknown one."""
    out: set[str] = set()
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in ("all", "*"):
            out.update(EVENT_TYPES)
            continue
        canonical = ALIASES.get(name.lower().replace("_", "-"), name.lower())
        if canonical not in EVENT_TYPES:
            raise UnknownEventType(name)
        out.add(canonical)
    return [t for t in EVENT_TYPES if t in out]


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def emit(
    conn: Connection,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    *,
    once_key: str | None = None,
) -> int:
    """Queue ``event_type`` with ``data`` for every active endpoint that asked for it, in the
    caller's transaction; returns how many deliveries were queued. ``once_key`` makes the event
    idempotent (its id derives from it, and an endpoint gets one delivery per id)."""
    wanted = [
        row.id
        for row in conn.execute(
            select(webhook_endpoints.c.id, webhook_endpoints.c.events).where(
                webhook_endpoints.c.active.is_(True)
            )
        )
        if event_type in (row.events or [])
    ]
    if not wanted:
        return 0
    if once_key is None:
        event_id = new_event_id()
    else:
        event_id = "evt_" + hashlib.sha256(f"{event_type}\x00{once_key}".encode()).hexdigest()[:24]
    body = orjson.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data}).decode(
        "utf-8"
    )
    stmt = dialect_insert(conn, webhook_deliveries).on_conflict_do_nothing(
        index_elements=[webhook_deliveries.c.endpoint_id, webhook_deliveries.c.event_id]
    )
    result = conn.execute(
        stmt,
        [
            {
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "event_type": event_type,
                "body": body,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in wanted
        ],
    )
    return max(result.rowcount, 0)
