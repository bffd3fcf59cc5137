"""``clinicmail outbox list|show``: read the messages the outbox transport stored."""

from __future__ import annotations

from email import message_from_bytes

import click

from app.cli.context import open_context
from app.cli.errors import fail
from app.cli.output import echo, echo_json


@click.group()
def outbox() -> None:
    """Read messages stored by the outbox transport."""


@outbox.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def outbox_list(limit: int, as_json: bool) -> None:
    """The newest stored messages."""
    from transports.outbox import newest

    rows = newest(open_context().db, limit)
    if as_json:
        echo_json(
            [
                {
                    "id": r.id,
                    "send_id": r.send_id,
                    "to": r.recipient,
                    "subject": r.subject,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    for r in rows:
        echo(f"{r.id}\t{r.created_at:%Y-%m-%d %H:%M}\t{r.recipient}\t{r.subject}")


@outbox.command("show")
@click.argument("message_id", type=int)
@click.option("--raw", is_flag=True, help="Print the full MIME message.")
def outbox_show(message_id: int, raw: bool) -> None:
    """One stored message (its text part, or --raw for the MIME source)."""
    from transports.outbox import stored_message, text_part

    data = stored_message(open_context().db, message_id)
    if data is None:
        fail(f"no outbox message {message_id}")
    if raw:
        echo(data.decode("utf-8", "replace"))
        return
    msg = message_from_bytes(data)
    for name in ("From", "To", "Subject", "List-Unsubscribe"):
        if msg[name] is not None:  # transactional email has no List-Unsubscribe
            echo(f"{name}: {msg[name]}")
    echo()
    echo(text_part(msg))
