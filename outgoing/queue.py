"""The delivery queue: endpoints (add, list, remove), what is due, each attempt's outcome,
back-off, replay, and switching off a receiver that has failed for days.

A delivery is ``pending`` until a 2xx answer (``delivered``); a failed attempt (no answer, or
any other status) is tried again after an exponentially growing pause
(:func:`backoff`: 5 s, 10 s, 20 s … capped at 6 h). An endpoint whose attempts have all
failed for :data:`DISABLE_AFTER` is disabled: its waiting deliveries become ``failed`` (they
can be replayed once it works again) and the caller alerts staff. A pass attempts at most one
delivery of an endpoint that just failed, so a dead receiver never slows a tick.
"""

from __future__ import annotations

import secrets
from base64 import b64encode
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update

from core.errors import InputError
from outgoing.events import event_types
from outgoing.tables import (
    DELIVERED,
    FAILED,
    PENDING,
    webhook_deliveries,
    webhook_endpoints,
)

FIRST_RETRY = timedelta(seconds=5)
LONGEST_WAIT = timedelta(hours=6)
DISABLE_AFTER = timedelta(days=3)
BATCH = 100


class WebhookError(InputError, ValueError):
    """An endpoint or delivery that cannot be used as given (unknown id, bad URL)."""


@dataclass(frozen=True)
class Endpoint:
    id: int
    public_id: str
    url: str
    events: tuple[str, ...]
    active: bool
    created_at: datetime
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    last_status_code: int | None = None
    last_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Delivery:
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    body: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + b64encode(secrets.token_bytes(32)).decode("ascii")


def check_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("https://", "http://")) or len(url) > 2000 or " " in url:
        raise WebhookError(f"not a web address: {url[:80]!r} (use https://…)")
    return url


def add(conn: Connection, url: str, events: list[str], now: datetime) -> tuple[Endpoint, str]:
    """Register ``url`` for ``events``; returns the endpoint and its secret (shown once)."""
    types = event_types(events)
    if not types:
        raise WebhookError("name at least one event with --events")
    secret = new_secret()
    public_id = "whe_" + secrets.token_hex(8)
    conn.execute(
        webhook_endpoints.insert().values(
            public_id=public_id,
            url=check_url(url),
            events=types,
            secret=secret,
            active=True,
            created_at=now,
        )
    )
    found = endpoint(conn, public_id)
    assert found is not None
    return found, secret


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        public_id=row.public_id,
        url=row.url,
        events=tuple(row.events or ()),
        active=bool(row.active),
        created_at=row.created_at,
        failing_since=row.failing_since,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
    )


def endpoint(conn: Connection, ref: str) -> Endpoint | None:
    """The endpoint with public id ``ref``, or (for the command line) with the URL ``ref``."""
    row = conn.execute(
        select(webhook_endpoints).where(webhook_endpoints.c.public_id == ref)
    ).first()
    if row is None:
        row = conn.execute(
            select(webhook_endpoints)
            .where(webhook_endpoints.c.url == ref)
            .order_by(webhook_endpoints.c.id)
        ).first()
    return None if row is None else _endpoint(row)


def endpoints(conn: Connection) -> list[Endpoint]:
    """Every endpoint, with its latest attempt's status code and time."""
    out = []
    for row in conn.execute(select(webhook_endpoints).order_by(webhook_endpoints.c.id)):
        last = conn.execute(
            select(webhook_deliveries.c.last_status_code, webhook_deliveries.c.last_attempt_at)
            .where(
                webhook_deliveries.c.endpoint_id == row.id,
                webhook_deliveries.c.last_attempt_at.is_not(None),
            )
            .order_by(webhook_deliveries.c.last_attempt_at.desc())
            .limit(1)
        ).first()
        e = _endpoint(row)
        if last is not None:
            e = Endpoint(**{**e.__dict__, "last_status_code": last[0], "last_attempt_at": last[1]})
        out.append(e)
    return out


def remove(conn: Connection, ref: str) -> Endpoint:
    """Delete the endpoint and its deliveries (raises :class:`WebhookError` when unknown)."""
    found = endpoint(conn, ref)
    if found is None:
        raise WebhookError(f"no webhook endpoint {ref!r} (see 'clinicmail webhooks list')")
    conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == found.id))
    return found


def enable(conn: Connection, ref: str) -> Endpoint:
    found = endpoint(conn, ref)
    if found is None:
        raise WebhookError(f"no webhook endpoint {ref!r} (see 'clinicmail webhooks list')")
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == found.id)
        .values(active=True, failing_since=None, disabled_at=None, disabled_reason=None)
    )
    return found


def _delivery(row: Any) -> Delivery:
    return Delivery(**{k: row._mapping[k] for k in Delivery.__dataclass_fields__})


def deliveries(
    conn: Connection, endpoint_id: int, *, after: int | None = None, limit: int = 50
) -> list[Delivery]:
    """An endpoint's deliveries, newest first (``after``: below this delivery id)."""
    query = select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
    if after is not None:
        query = query.where(webhook_deliveries.c.id < after)
    rows = conn.execute(query.order_by(webhook_deliveries.c.id.desc()).limit(limit))
    return [_delivery(r) for r in rows]


def delivery(conn: Connection, delivery_id: int) -> Delivery | None:
    row = conn.execute(
        select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
    ).first()
    return None if row is None else _delivery(row)


def replay(conn: Connection, delivery_id: int, now: datetime) -> Delivery:
    """Send a delivery again (same id and body, so a receiver can deduplicate), at once."""
    found = delivery(conn, delivery_id)
    if found is None:
        raise WebhookError(f"no webhook delivery {delivery_id}")
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(status=PENDING, next_attempt_at=now, delivered_at=None)
    )
    again = delivery(conn, delivery_id)
    assert again is not None
    return again


@dataclass(frozen=True)
class Due:
    delivery_id: int
    endpoint_id: int
    url: str
    secret: str
    event_id: str
    body: str
    attempts: int


def due(conn: Connection, now: datetime, limit: int = BATCH) -> list[Due]:
    """Pending deliveries of active endpoints whose time has come, oldest first."""
    d, e = webhook_deliveries.c, webhook_endpoints.c
    rows = conn.execute(
        select(d.id, d.endpoint_id, e.url, e.secret, d.event_id, d.body, d.attempts)
        .join(webhook_endpoints, e.id == d.endpoint_id)
        .where(d.status == PENDING, d.next_attempt_at <= now, e.active.is_(True))
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
    )
    return [Due(*r) for r in rows]


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: 5 s doubling (a receiver
    restarting is back within the minute; one down for hours is tried a few times an hour),
    6 h at most."""
    if attempts >= 20:
        return LONGEST_WAIT
    wait: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(wait, LONGEST_WAIT)


def succeeded(conn: Connection, item: Due, status_code: int, now: datetime) -> None:
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == item.delivery_id)
        .values(
            status=DELIVERED,
            attempts=item.attempts + 1,
            last_attempt_at=now,
            last_status_code=status_code,
            last_error=None,
            next_attempt_at=None,
            delivered_at=now,
        )
    )
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == item.endpoint_id)
        .values(failing_since=None)
    )


def failed(
    conn: Connection, item: Due, status_code: int | None, error: str, now: datetime
) -> datetime:
    """Record a failed attempt; returns when it is tried again."""
    attempts = item.attempts + 1
    again = now + backoff(attempts)
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == item.delivery_id)
        .values(
            attempts=attempts,
            last_attempt_at=now,
            last_status_code=status_code,
            last_error=error[:200],
            next_attempt_at=again,
        )
    )
    conn.execute(
        update(webhook_endpoints)
        .where(
            webhook_endpoints.c.id == item.endpoint_id,
            webhook_endpoints.c.failing_since.is_(None),
        )
        .values(failing_since=now)
    )
    return again


def postpone(conn: Connection, delivery_ids: list[int], until: datetime) -> None:
    """Deliveries not attempted this pass because their endpoint just failed."""
    if delivery_ids:
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id.in_(delivery_ids))
            .values(next_attempt_at=until)
        )


def disable_failing(conn: Connection, now: datetime) -> list[Endpoint]:
    """Switch off every active endpoint failing for longer than :data:`DISABLE_AFTER`; their
    waiting deliveries become ``failed``. Returns the endpoints switched off (to alert staff)."""
    rows = conn.execute(
        select(webhook_endpoints).where(
            webhook_endpoints.c.active.is_(True),
            webhook_endpoints.c.failing_since <= now - DISABLE_AFTER,
        )
    ).all()
    out = []
    for row in rows:
        reason = f"every attempt failed since {row.failing_since.isoformat()}"
        conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == row.id)
            .values(active=False, disabled_at=now, disabled_reason=reason)
        )
        conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.endpoint_id == row.id,
                webhook_deliveries.c.status == PENDING,
            )
            .values(status=FAILED, next_attempt_at=None)
        )
        out.append(_endpoint(row))
    return out
