"""Reminding staff of follow-ups nobody closed in time (:mod:`engagement.followups`).

Each tick looks for open follow-ups past due whose staff were not yet reminded and raises one
``followup-alert`` on the ops-alert queue (:mod:`alerts`), which the tick's deliverer sends to
CLINICMAIL_STAFF_EMAIL like every other alert: a count and a link to the console's list, never
who or what they reported. The follow-ups it names are marked reminded in the transaction that
raises the alert, so neither happens without the other.
"""

from __future__ import annotations

import logging
from datetime import datetime

from alerts import raise_alert
from engagement import followups
from scheduler.runtime import Runtime
from templates.system import FOLLOWUP_ALERT

log = logging.getLogger("clinicmail.followups")


def remind_overdue(ctx: Runtime, now: datetime) -> int:
    """Raise the reminder for follow-ups newly past due; returns how many it named."""
    with ctx.db.begin() as conn:
        due = followups.due_reminders(conn, now)
        if not due:
            return 0
        raise_alert(
            conn,
            FOLLOWUP_ALERT,
            f"reminder@{now.isoformat()}",
            {
                "count": len(due),
                "within": ctx.settings.followup_within,
                "followups_url": f"{ctx.settings.base_url}/admin/followups",
            },
            now,
        )
        followups.mark_reminded(conn, due, now)
    log.warning("%d follow-up(s) past due with no reply recorded", len(due))
    return len(due)
