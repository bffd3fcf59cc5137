"""A CSV import of subscribers, as ``clinicmail subscribers import`` and the console run it:
the domain's checks and reject reasons (:mod:`subscribers.importer`), and everyone it confirms
enrolled in the campaigns their symptoms select (a red flag gets the safety email and staff are
told, as for a signup)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from app.context import AppContext
from app.onboarding import confirmed
from subscribers.importer import Importer, Rejection, Summary


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
