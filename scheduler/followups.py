"""Reminding staff of follow-ups nobody closed in time (:mod:`engagement.followups`).

Each tick looks for open follow-ups past due whose staff were not yet reminded and sends one
``followup-alert`` to CLINICMAIL_STAFF_EMAIL through the staff-alert path every other alert
uses: a count and a link to the console's list, never who or what they reported. The
follow-ups it names are marked reminded once the provider took the alert (or refused it for
good); otherwise the next tick tries again.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from engagement import followups
from scheduler.context import AppContext
from scheduler.transports import Batch, send_staff_alert
from templates.system import render_ops_email

log = logging.getLogger("clinicmail.followups")


def remind_overdue(ctx: AppContext, now: datetime) -> int:
    """Send the reminder for follow-ups newly past due; returns how many it named."""
    with ctx.db.begin() as conn:
        due = followups.due_reminders(conn, now)
    if not due:
        return 0
    log.warning("%d follow-up(s) past due with no reply recorded", len(due))
    staff = ctx.settings.staff_email
    if staff:
        rendered = render_ops_email(
            ctx.renderer,
            "followup-alert",
            {
                "count": len(due),
                "within": ctx.settings.followup_within,
                "followups_url": f"{ctx.settings.base_url}/admin/followups",
            },
        )
        batch = Batch.staff_alert(
            rendered,
            alert="followup-alert",
            send_id=uuid.uuid4().hex,
            to=staff,
            from_email=ctx.settings.from_email,
            from_name=ctx.settings.clinic_name,
        )
        if send_staff_alert(ctx.transport, batch, "follow-up reminder", log) is None:
            return 0  # not handed over: the next tick tries again
    with ctx.db.begin() as conn:
        followups.mark_reminded(conn, due, now)
    return len(due)
