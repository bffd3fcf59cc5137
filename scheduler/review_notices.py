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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts import raise_alert
from campaigns import versions
from scheduler.runtime import Runtime
from staff import accounts, review_notices
from staff.review_notices import SUBMITTED, Notice
from storage import kvstate
from templates.system import REVIEW_DECIDED, REVIEW_DUE, REVIEW_SUBMITTED

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


def warn_review_due(ctx: Runtime, now: datetime) -> int:
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
    variables = {
        "count": len(due),
        "campaigns": ", ".join(
            f"{v.campaign_id} (due {v.review_due_at:%d %b %Y})" for v in due if v.review_due_at
        ),
        "interval": ctx.settings.review_interval,
        "reviews_url": f"{ctx.settings.base_url}/admin/reviews",
    }
    occasion = ",".join(f"{v.id}@{v.review_due_at:%Y-%m-%d}" for v in due if v.review_due_at)
    with ctx.db.begin() as conn:
        for to in clinicians or ([ctx.settings.staff_email] if ctx.settings.staff_email else []):
            raise_alert(conn, REVIEW_DUE, f"{to}:{occasion}", {"to": to, **variables}, now)
        state = DueNotices.load(kvstate.read_locked(conn, DUE_KEY, DueNotices().dump()))
        state.told.update({v.id: v.review_due_at.isoformat() for v in due if v.review_due_at})
        kvstate.write(conn, DUE_KEY, state.dump())
    return len(due)


def _url(ctx: Runtime, notice: Notice) -> str:
    base = ctx.settings.base_url
    if notice.what == "version":
        return f"{base}/admin/reviews/versions/{notice.target_id}"
    return f"{base}/admin/newsletters/{notice.target_id}"


def _alerts(ctx: Runtime, notice: Notice) -> list[tuple[str, str, dict[str, object]]]:
    """(kind, key, variables) of the notice's email to each person it concerns."""
    values: dict[str, object] = {
        "item": notice.label,
        "by": notice.by,
        "review_url": _url(ctx, notice),
    }
    if notice.event == SUBMITTED:
        name = REVIEW_SUBMITTED
    else:
        name = REVIEW_DECIDED
        values |= {"decision": notice.event, "note": notice.note}
    return [(name, f"{notice.entry_id}:{to}", {"to": to, **values}) for to in notice.to]


def send_review_notices(ctx: Runtime, now: datetime) -> int:
    """Raise the notices of review steps logged since the last pass (the tick's alert
    deliverer sends them); returns how many emails were raised."""
    with ctx.db.begin() as conn:
        cursor = Cursor.load(kvstate.read(conn, KEY))
        notices = review_notices.pending(conn, cursor.after, now - LOOK_BACK)
    raised = 0
    for notice in notices:
        with ctx.db.begin() as conn:
            for kind, key, variables in _alerts(ctx, notice):
                raised += int(raise_alert(conn, kind, key, variables, now))
            cursor.after = notice.entry_id
            kvstate.read_locked(conn, KEY, Cursor().dump())  # the row exists from now on
            kvstate.write(conn, KEY, cursor.dump())
    return raised
