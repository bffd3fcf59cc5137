"""Posting outgoing webhooks: take what is due from the queue (:mod:`outgoing.queue`), sign each
body to the Standard Webhooks specification with the ``standardwebhooks`` package and post it.
The tick, ``serve``'s own job and ``clinicmail webhooks deliver`` call :func:`deliver_due`.

Each attempt is recorded in its own short transaction (no transaction stays open across a
request). A 2xx answer delivers; anything else is retried with back-off. After an endpoint
fails once in a pass, its other due deliveries wait for its next attempt, so one dead receiver
costs a pass one timeout at most. Delivery is at least once: a receiver deduplicates by the
``webhook-id`` header, which is the same on every attempt and on a replay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from alerts import raise_alert
from outgoing import queue
from storage import Database
from templates.system import WEBHOOK_ALERT

log = logging.getLogger("clinicmail.webhooks")

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "clinicmail-webhooks/1"


@dataclass
class WebhookReport:
    delivered: int = 0
    failed_attempts: int = 0
    disabled: int = 0


def signed_headers(secret: str, event_id: str, body: str, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed at ``at`` (the wall clock: a
    receiver refuses a timestamp far from its own)."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
    }


def deliver_due(
    db: Database, now: datetime, *, client: httpx.Client | None = None
) -> WebhookReport:
    """One pass over what is due by ``now`` (the tick's time; the signature's timestamp is the
    wall clock when the request leaves)."""
    report = WebhookReport()
    with db.begin() as conn:
        off = queue.disable_failing(conn, now)
        for endpoint in off:  # staff are told, in the transaction that switched it off
            raise_alert(conn, WEBHOOK_ALERT, _alert_key(endpoint, now), _alert(endpoint), now)
    for endpoint in off:
        report.disabled += 1
        log.error("webhook endpoint %s disabled: failing for days", endpoint.public_id)
    with db.begin() as conn:
        due = queue.due(conn, now)
    if not due:
        return report
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)
    failing: dict[int, datetime] = {}  # endpoint id → when it is tried again
    skipped: dict[int, list[int]] = {}
    try:
        for item in due:
            if item.endpoint_id in failing:
                skipped.setdefault(item.endpoint_id, []).append(item.delivery_id)
                continue
            status, error = _post(http, item)
            with db.begin() as conn:
                if status is not None and 200 <= status < 300:
                    queue.succeeded(conn, item, status, now)
                    report.delivered += 1
                else:
                    failing[item.endpoint_id] = queue.failed(conn, item, status, error, now)
                    report.failed_attempts += 1
    finally:
        if own:
            http.close()
    if skipped:
        with db.begin() as conn:
            for endpoint_id, ids in skipped.items():
                queue.postpone(conn, ids, failing[endpoint_id])
    return report


def _post(http: httpx.Client, item: queue.Due) -> tuple[int | None, str]:
    headers = signed_headers(item.secret, item.event_id, item.body, datetime.now(UTC))
    try:
        answer = http.post(item.url, content=item.body.encode("utf-8"), headers=headers)
    except httpx.HTTPError as exc:
        return None, type(exc).__name__
    return answer.status_code, "" if answer.is_success else f"HTTP {answer.status_code}"


def _alert_key(endpoint: queue.Endpoint, now: datetime) -> str:
    """An endpoint is switched off once per time it is on: when names the occurrence."""
    return f"{endpoint.public_id}@{now.isoformat()}"


def _alert(endpoint: queue.Endpoint) -> dict[str, str]:
    """What staff read about a receiver that was switched off (``webhook-alert``)."""
    return {
        "endpoint": endpoint.public_id,
        "url": endpoint.url,
        "since": (endpoint.failing_since.isoformat() if endpoint.failing_since else "")[:19],
        "error": "no successful answer",
    }
