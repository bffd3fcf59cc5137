"""List health, composed: the complaint-rate check, its staff alerts, and the sunset policy.

The rules live in :mod:`engagement.complaints` and :mod:`engagement.sunset`; this module gives
them what only the composition root has (settings, the transport, send windows) and is what the
hourly housekeeping job and ``clinicmail health`` call.

Complaint alerts concern no subscriber, so like every ops alert they are not ledger rows: they
wait in the ops-alert queue (:mod:`alerts`) until the one deliverer (:mod:`scheduler.alerting`)
hands them over, at the next tick or housekeeping run (the pause itself is immediate).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from app.context import AppContext
from app.onboarding import queue_reengagement
from engagement import complaints, sunset
from engagement.sunset import Dormant, SunsetReport
from scheduler.alerting import deliverer
from templates.system import COMPLAINT_ALERT

log = logging.getLogger("clinicmail.listhealth")


def run_sunset(ctx: AppContext, now: datetime, *, dry_run: bool = False) -> SunsetReport:
    s = ctx.settings
    times = s.cadence

    def ask(conn: Connection, people: list[Dormant], at: datetime) -> None:
        queue_reengagement(conn, people, at, times)

    with ctx.db.begin() as conn:
        report = sunset.run(conn, now, s.sunset_weeks, ask, dry_run=dry_run)
    if report.asked and not dry_run:
        log.info("sunset: %d dormant subscribers asked once and paused", report.asked)
    return report


def housekeeping(ctx: AppContext, now: datetime) -> dict[str, Any]:
    """The list-health part of the hourly housekeeping job."""
    with ctx.db.begin() as conn:
        complaints.evaluate(conn, now)
    alerts = deliverer(ctx).deliver(now)
    report = run_sunset(ctx, now)
    return {"complaint_alerts_sent": alerts.sent[COMPLAINT_ALERT], **report.as_dict()}


def summary(conn: Connection, now: datetime, sunset_weeks: int) -> dict[str, Any]:
    """The state in one small dict (``clinicmail stats``, ``clinicmail health status``)."""
    state = complaints.load(conn)
    today = complaints.day_figures(conn, now.astimezone(UTC).date())
    return {
        "campaigns_paused": state.paused,
        "paused_at": state.paused_at,
        "paused_because": state.paused_because,
        "resumed_at": state.resumed_at,
        "complaints_today": today.as_dict(),
        "complaint_limits": {
            "alert_rate": complaints.ALERT_RATE,
            "pause_rate": complaints.PAUSE_RATE,
            "min_volume": complaints.MIN_VOLUME,
        },
        "alerts_waiting": len(complaints.pending_alerts(conn)),
        "sunset": {"weeks": sunset_weeks, "min_sends": sunset.MIN_SENDS, **sunset.counts(conn)},
    }
