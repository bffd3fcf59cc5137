"""``clinicmail webhooks add|list|remove|enable|deliveries|replay|deliver``: outgoing webhooks
to the clinic's other systems, signed to the Standard Webhooks specification.

``add`` prints the endpoint's signing secret once, alone on the last line. Deliveries go out
with each tick (and every few seconds while ``serve`` runs); ``deliver`` runs one pass now.
"""

from __future__ import annotations

import click

from app.cli.context import open_context
from app.cli.options import parse_now
from app.cli.output import echo, echo_json, print_table


@click.group()
def webhooks() -> None:
    """Outgoing webhooks: tell the clinic's other systems what happened."""


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--events",
    "events",
    multiple=True,
    required=True,
    metavar="EVENT[,EVENT…]",
    help="subscriber.red_flag, checkin.worse, subscriber.unsubscribed, subscriber.complained, "
    "goal.reached, subscriber.erased (short: red-flag, worse, unsubscribe, complaint, goal, "
    "erase), or all.",
)
def add(url: str, events: tuple[str, ...]) -> None:
    """Register URL for EVENTS; prints the signing secret once, on the last line."""
    from outgoing import queue
    from staff import audit
    from storage import utcnow

    names = [n for e in events for n in e.split(",")]
    ctx = open_context()
    now = utcnow()
    with ctx.db.begin() as conn:
        made, secret = queue.add(conn, url, names, now)
        audit.record(
            conn, None, "webhook.add", "webhook", made.public_id, now, {"events": list(made.events)}
        )
    echo(f"added webhook {made.public_id} for {', '.join(made.events)}")
    echo("Copy the signing secret now: it cannot be shown again.")
    echo(secret)


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List endpoints: id, URL, events, state and the last attempt's answer."""
    from outgoing import queue

    ctx = open_context()
    with ctx.db.begin() as conn:
        found = queue.endpoints(conn)
    if as_json:
        echo_json(
            [
                {
                    "id": e.public_id,
                    "url": e.url,
                    "events": list(e.events),
                    "active": e.active,
                    "failing_since": e.failing_since.isoformat() if e.failing_since else None,
                    "disabled_reason": e.disabled_reason,
                    "last_status_code": e.last_status_code,
                    "last_attempt_at": e.last_attempt_at.isoformat() if e.last_attempt_at else None,
                }
                for e in found
            ]
        )
        return
    if not found:
        echo("no webhooks yet: add one with 'clinicmail webhooks add URL --events …'")
        return
    rows = []
    for e in found:
        state = "active" if e.active else f"disabled: {e.disabled_reason}"
        last = (
            f"{e.last_status_code or 'no answer'} at {e.last_attempt_at:%Y-%m-%d %H:%M}"
            if e.last_attempt_at
            else "-"
        )
        rows.append((e.public_id, e.url, ",".join(e.events), state, last))
    print_table(("id", "url", "events", "state", "last answer"), rows)


@webhooks.command("remove")
@click.argument("endpoint")
def remove(endpoint: str) -> None:
    """Remove ENDPOINT (its id or URL) and its deliveries."""
    from outgoing import queue
    from staff import audit
    from storage import utcnow

    ctx = open_context()
    now = utcnow()
    with ctx.db.begin() as conn:
        gone = queue.remove(conn, endpoint)
        audit.record(conn, None, "webhook.remove", "webhook", gone.public_id, now)
    echo(f"removed webhook {gone.public_id}")


@webhooks.command("enable")
@click.argument("endpoint")
def enable(endpoint: str) -> None:
    """Switch ENDPOINT (id or URL) on again after it was disabled for failing."""
    from outgoing import queue
    from staff import audit
    from storage import utcnow

    ctx = open_context()
    now = utcnow()
    with ctx.db.begin() as conn:
        found = queue.enable(conn, endpoint)
        audit.record(conn, None, "webhook.enable", "webhook", found.public_id, now)
    echo(f"enabled webhook {found.public_id}")


@webhooks.command("deliveries")
@click.argument("endpoint")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def deliveries(endpoint: str, limit: int, as_json: bool) -> None:
    """ENDPOINT's latest deliveries: event, state, attempts, last answer."""
    from outgoing import queue
    from outgoing.queue import WebhookError

    ctx = open_context()
    with ctx.db.begin() as conn:
        found = queue.endpoint(conn, endpoint)
        if found is None:
            raise WebhookError(f"no webhook endpoint {endpoint!r} (see 'clinicmail webhooks list')")
        rows = queue.deliveries(conn, found.id, limit=limit)
    data = [
        {
            "id": d.id,
            "event_id": d.event_id,
            "event_type": d.event_type,
            "status": d.status,
            "attempts": d.attempts,
            "last_status_code": d.last_status_code,
            "last_error": d.last_error,
            "last_attempt_at": d.last_attempt_at.isoformat() if d.last_attempt_at else None,
            "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        }
        for d in rows
    ]
    if as_json:
        echo_json(data)
        return
    for d in data:
        echo(
            f"{d['id']}  {d['event_type']}  {d['status']}  attempts={d['attempts']}  "
            f"last={d['last_status_code'] or d['last_error'] or '-'}"
        )


@webhooks.command("replay")
@click.argument("delivery_ids", nargs=-1, type=int, required=True)
def replay(delivery_ids: tuple[int, ...]) -> None:
    """Send the deliveries DELIVERY_IDS again (same webhook-id, so receivers deduplicate)."""
    from outgoing import queue
    from storage import utcnow

    ctx = open_context()
    with ctx.db.begin() as conn:
        for did in delivery_ids:
            queue.replay(conn, did, utcnow())
    echo(f"queued {len(delivery_ids)} deliveries again")


@webhooks.command("deliver")
@click.option("--now", "now_text", metavar="ISO8601", help="Act as if it were this time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def deliver(now_text: str | None, as_json: bool) -> None:
    """Post what is due now (the tick does this too)."""
    from dataclasses import asdict

    from outgoing.posting import deliver_due
    from scheduler.alerting import deliverer

    now = parse_now(now_text)
    ctx = open_context()
    report = deliver_due(ctx.db, now)
    if report.disabled:  # the staff alert about a receiver switched off goes at once
        deliverer(ctx).deliver(now)
    if as_json:
        echo_json(asdict(report))
    else:
        echo(f"delivered {report.delivered}, failed attempts {report.failed_attempts}")
