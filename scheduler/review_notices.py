"""Email notices of the review workflow: clinicians hear when content is submitted for review,
the author when a clinician approves it or sends it back (:mod:`staff.review_notices` says who),
and clinicians when the review of live content falls due within :func:`warning_before` (once
per due date: :func:`warn_review_due`).

Each tick reads the review steps logged since its cursor (a ``kv`` row) and sends each notice
through the staff-alert path every other staff email uses; the cursor moves past a step once
its notices were handed over (or refused for good), so a notice is sent once, and one the
transport could not take is tried again at the next tick.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from campaigns import versions
from scheduler.context import AppContext
from scheduler.transports import Batch, send_staff_alert
from staff import accounts, review_notices
from staff.review_notices import SUBMITTED, Notice
from storage import kvstate
from templates.system import render_ops_email

log = logging.getLogger("clinicmail.review")
KEY = "review.notices"
# Steps logged longer ago than this when the cursor starts (a new installation, an upgrade)
# are history, not news.
LOOK_BACK = timedelta(days=2)


DUE_KEY = "review.due_notices"


@dataclass
class Cursor(kvstate.JsonState):
    after: int = 0


@dataclass
class DueNotices(kvstate.JsonState):
    # version id -> the due date (ISO) clinicians were told about
    told: dict[str, str] = field(default_factory=dict)


def warning_before(interval: timedelta) -> timedelta:
    """How long before a review lapses clinicians are told: 30 days, or a quarter of a
    shorter review interval."""
    return min(timedelta(days=30), interval / 4)


def warn_review_due(ctx: AppContext, now: datetime) -> int:
    """Tell every active clinician, in one email, which live campaigns' reviews fall due within
    :func:`warning_before` and were not yet told about for that due date; returns how many
    campaigns it named."""
    soon = now + warning_before(ctx.settings.review_every)
    with ctx.db.begin() as conn:
        told = DueNotices.load(kvstate.read(conn, DUE_KEY)).told
        due = [
            v
            for v in versions.in_state(conn, versions.ACTIVE)
            if v.review_due_at is not None
            and v.review_due_at <= soon
            and told.get(v.id) != v.review_due_at.isoformat()
        ]
        clinicians = [
            u.email
            for u in accounts.all_users(conn)
            if u.active and u.role == review_notices.CLINICIAN
        ]
    if not due:
        return 0
    rendered = render_ops_email(
        ctx.renderer,
        "review-due",
        {
            "count": len(due),
            "campaigns": ", ".join(
                f"{v.campaign_id} (due {v.review_due_at:%d %b %Y})" for v in due if v.review_due_at
            ),
            "interval": ctx.settings.review_interval,
            "reviews_url": f"{ctx.settings.base_url}/admin/reviews",
        },
    )
    for to in clinicians or ([ctx.settings.staff_email] if ctx.settings.staff_email else []):
        batch = Batch.staff_alert(
            rendered,
            alert="review-due",
            send_id=uuid.uuid4().hex,
            to=to,
            from_email=ctx.settings.from_email,
            from_name=ctx.settings.clinic_name,
        )
        if send_staff_alert(ctx.transport, batch, "review-due notice", log) is None:
            return 0  # the next tick tries again (a clinician told twice beats none told)
    with ctx.db.begin() as conn:
        state = DueNotices.load(kvstate.read_locked(conn, DUE_KEY, DueNotices().dump()))
        state.told.update({v.id: v.review_due_at.isoformat() for v in due if v.review_due_at})
        kvstate.write(conn, DUE_KEY, state.dump())
    return len(due)


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
