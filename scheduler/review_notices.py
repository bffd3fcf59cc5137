"""Email notices of the review workflow: clinicians hear when content is submitted for review,
the author when a clinician approves it or sends it back (:mod:`staff.review_notices` says who).

Each tick reads the review steps logged since its cursor (a ``kv`` row) and sends each notice
through the staff-alert path every other staff email uses; the cursor moves past a step once
its notices were handed over (or refused for good), so a notice is sent once, and one the
transport could not take is tried again at the next tick.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.context import AppContext
from scheduler.transports import Batch, send_staff_alert
from staff import review_notices
from staff.review_notices import SUBMITTED, Notice
from storage import kvstate
from templates.system import render_ops_email

log = logging.getLogger("clinicmail.review")
KEY = "review.notices"
# Steps logged longer ago than this when the cursor starts (a new installation, an upgrade)
# are history, not news.
LOOK_BACK = timedelta(days=2)


@dataclass
class Cursor(kvstate.JsonState):
    after: int = 0


def _url(ctx: AppContext, notice: Notice) -> str:
    base = ctx.settings.base_url
    if notice.what == "version":
        return f"{base}/admin/reviews/versions/{notice.target_id}"
    return f"{base}/admin/newsletters/{notice.target_id}"


def _batches(ctx: AppContext, notice: Notice) -> list[Batch]:
    values: dict[str, object] = {
        "item": notice.label,
        "by": notice.by,
        "review_url": _url(ctx, notice),
    }
    if notice.event == SUBMITTED:
        name = "review-submitted"
    else:
        name = "review-decided"
        values |= {"decision": notice.event, "note": notice.note}
    rendered = render_ops_email(ctx.renderer, name, values)
    return [
        Batch.staff_alert(
            rendered,
            alert=name,
            send_id=uuid.uuid4().hex,
            to=to,
            from_email=ctx.settings.from_email,
            from_name=ctx.settings.clinic_name,
        )
        for to in notice.to
    ]


def send_review_notices(ctx: AppContext, now: datetime) -> int:
    """Send the notices of review steps logged since the last pass; returns how many emails
    were handed over."""
    with ctx.db.begin() as conn:
        cursor = Cursor.load(kvstate.read(conn, KEY))
        notices = review_notices.pending(conn, cursor.after, now - LOOK_BACK)
    sent = 0
    for notice in notices:
        handled = True
        for batch in _batches(ctx, notice):
            outcome = send_staff_alert(ctx.transport, batch, "review notice", log)
            if outcome is None:
                handled = False
                break
            sent += int(outcome)
        if not handled:
            break  # the transport is failing: this step and the rest wait for the next tick
        cursor.after = notice.entry_id
        with ctx.db.begin() as conn:
            kvstate.read_locked(conn, KEY, Cursor().dump())  # the row exists from now on
            kvstate.write(conn, KEY, cursor.dump())
    return sent
