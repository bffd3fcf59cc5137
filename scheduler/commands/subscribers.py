"""``clinicmail subscribers export|erase``: data portability and the right to erasure."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import Connection, delete, func, select

from subscribers.privacy import Section


def _enrollments(conn: Connection, sid: int) -> list[dict[str, Any]]:
    from campaigns.tables import enrollments
    from subscribers.privacy import row_dict

    rows = conn.execute(
        select(enrollments).where(enrollments.c.subscriber_id == sid).order_by(enrollments.c.id)
    ).mappings()
    return [row_dict(r, skip=("id", "subscriber_id")) for r in rows]


def _sends(conn: Connection, sid: int) -> list[dict[str, Any]]:
    """The send ledger without content (what was sent when, never the message itself)."""
    from scheduler.ledger import sends
    from subscribers.privacy import row_dict

    cols = [
        sends.c.send_id,
        sends.c.campaign_id,
        sends.c.step_id,
        sends.c.variant_id,
        sends.c.kind,
        sends.c.status,
        sends.c.created_at,
        sends.c.sent_at,
        sends.c.transport,
    ]
    rows = conn.execute(
        select(*cols).where(sends.c.subscriber_id == sid).order_by(sends.c.id)
    ).mappings()
    return [row_dict(r) for r in rows]


def record_sections() -> dict[str, Section]:
    """The rows other packages hold about a person, for the CLI export and the console's page."""
    return {"enrollments": _enrollments, "sends": _sends}


def register(cli: click.Group) -> None:
    group = cli.commands["subscribers"]
    assert isinstance(group, click.Group)

    @group.command("export")
    @click.argument("email")
    def export(email: str) -> None:
        """Print everything held about the person with EMAIL as JSON (data portability).

        Profile, symptoms with their labels, the consent ledger, enrollments, the send ledger
        (without message content) and suppression status.
        """
        from scheduler.cli import _context, fail
        from subscribers.addresses import InvalidAddress
        from subscribers.privacy import export_person

        ctx = _context()
        try:
            with ctx.db.begin() as conn:
                data = export_person(
                    conn, email, sections={"enrollments": _enrollments, "sends": _sends}
                )
        except InvalidAddress as exc:
            fail(str(exc))
        if data is None:
            fail("no subscriber with that address")
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))

    @group.command("erase")
    @click.argument("email")
    def erase(email: str) -> None:
        """Erase the person with EMAIL: profile, symptoms, consent records, sends, stored
        messages, enrollments and provider events. Only a one-way hash of the address stays, on the suppression
        list, so a later import or signup cannot add them back. Safe to run twice."""
        from engagement.process import forget
        from scheduler.cli import _context, fail
        from scheduler.ledger import outbox
        from subscribers.addresses import InvalidAddress, normalize
        from subscribers.privacy import erase as erase_person
        from subscribers.privacy import scrub

        ctx = _context()
        now = datetime.now(UTC)
        try:
            _, key = normalize(email)
            with ctx.db.begin() as conn:
                result = erase_person(conn, email, now)
                # Cascades remove the outbox rows of this subscriber; this also catches any
                # stored message that reached the address without a subscriber link.
                conn.execute(delete(outbox).where(func.lower(outbox.c.recipient) == key))
                forget(conn, key)  # provider events: their raw payloads hold the address
        except InvalidAddress as exc:
            fail(str(exc))
        scrub(ctx.db)
        if result.found:
            click.echo(
                "erased; only a one-way hash of the address remains, on the suppression list"
            )
        elif result.already_suppressed:
            click.echo(
                "nothing held for that address; its hash was already on the suppression list"
            )
        else:
            click.echo(
                "nothing held for that address; its hash is now on the suppression list "
                "so it cannot be added again"
            )
