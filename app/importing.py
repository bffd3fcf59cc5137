"""A CSV import of subscribers, as ``clinicmail subscribers import`` and the console run it:
the domain's checks and reject reasons (:mod:`subscribers.importer`), and everyone it confirms
enrolled in the campaigns their symptoms select (a red flag gets the safety email and staff are
told, as for a signup)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from app.context import AppContext
from app.onboarding import confirmed
from core.errors import InputError
from staff import audit
from staff.accounts import StaffUser
from subscribers.importer import Importer, Rejection, Summary, parse_row
from subscribers.tables import subscribers


def import_file(
    ctx: AppContext,
    path: Path,
    now: datetime,
    *,
    on_reject: Callable[[Rejection], None] = lambda _r: None,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> Summary:
    """Import ``path``; raises :class:`subscribers.importer.ImportFileError` for a file that
    cannot be imported at all (nothing is written then)."""

    def on_chunk(conn: Any, people: list[Any]) -> None:
        confirmed(
            conn,
            ctx.catalog,
            people,
            now,
            staff_email=ctx.settings.staff_email,
            followup=ctx.settings.followup,
        )

    return Importer(ctx.db, now).run(
        path, on_reject=on_reject, on_chunk=on_chunk, on_progress=on_progress
    )


class PersonRefused(InputError, ValueError):
    """One person's details failed the import's checks; the message says which, for the page."""


def save_person(
    ctx: AppContext, fields: dict[str, str], now: datetime, actor: StaffUser
) -> tuple[str, bool]:
    """Add or update one person from the console with the import's own checks and consent rule
    (consent must be given; an unconfirmed person becomes confirmed; a known address is
    updated), enrolled as an import enrols. The audit entry (``subscriber.add`` or
    ``subscriber.edit``, named by the public id, no health data) is written in the same
    transaction. Returns (public id, whether the person is new); raises :class:`PersonRefused`."""
    raw: dict[str | None, str | list[str] | None] = {k: v for k, v in fields.items()}
    parsed = parse_row(1, raw)
    if isinstance(parsed, Rejection):
        raise PersonRefused(parsed.reason)
    found: list[str] = []

    def on_chunk(conn: Any, people: list[Any]) -> None:
        confirmed(
            conn,
            ctx.catalog,
            people,
            now,
            staff_email=ctx.settings.staff_email,
            followup=ctx.settings.followup,
        )

    def then(conn: Connection, summary: Summary) -> None:
        public_id = conn.execute(
            select(subscribers.c.public_id).where(subscribers.c.email_key == parsed.key)
        ).scalar_one()
        found.append(public_id)
        action = "subscriber.add" if summary.imported else "subscriber.edit"
        detail = {"changed": bool(summary.imported or summary.updated)}
        audit.record(conn, actor, action, "subscriber", public_id, now, detail)

    summary, refused = Importer(ctx.db, now).apply_one(parsed, on_chunk=on_chunk, then=then)
    if refused is not None:
        raise PersonRefused(refused.reason)
    return found[0], bool(summary.imported)
