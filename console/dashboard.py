"""The console's home: how the email is doing, and whether the list and delivery are healthy.

The figures are ``clinicmail stats --json``'s, from the same code (:mod:`engagement.stats`); the
weekly series use its counting rules too (:func:`engagement.stats.by_week`). Each chart is
server-rendered SVG with a table of the same numbers beside it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console.auth import OpsStaff
from console.charts import Series, bar_chart, line_chart
from console.deps import Db, services
from console.ports import ConsolePorts
from console.render import page
from engagement import complaints
from engagement.stats import by_week
from staff import audit
from storage import utcnow
from subscribers import directory

# Bounce rates above 2% are where mailbox providers and SendGrid start to throttle a sender;
# the complaint limits are the ones the service enforces (engagement.complaints).
BOUNCE_RATE_LIMIT = 0.02
WEEKLY_KEYS = (
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("unique_opens", "Human opens"),
    ("unique_clicks", "Clicks"),
)
TROUBLE_KEYS = (
    ("unsubscribes", "Unsubscribes"),
    ("spam_reports", "Complaints"),
    ("bounces", "Bounces"),
)
CHECKIN_KEYS = (("checkin_better", "Better"), ("checkin_same", "Same"), ("checkin_worse", "Worse"))


def _week_label(week: date) -> str:
    return week.strftime("%d %b")


def dashboard_context(ports: ConsolePorts) -> dict[str, Any]:
    seams = services(ports)
    now = utcnow()
    data = seams.stats(now)
    with ports.db.begin() as conn:
        weeks = by_week(conn)
        to_review = directory.flagged_for_review(conn)
    labels = [_week_label(w) for w, _ in weeks]
    rows = [{"week": w.isoformat(), "label": _week_label(w), **c} for w, c in weeks]

    def series(keys: tuple[tuple[str, str], ...]) -> list[Series]:
        return [Series(name, [c[k] for _, c in weeks]) for k, name in keys]

    totals = data["totals"]
    health = data["list_health"]
    bounce_rate = totals["bounces"] / totals["sent"] if totals["sent"] else 0.0
    return {
        "title": "Dashboard",
        "data": data,
        "weeks": rows,
        "weekly_keys": WEEKLY_KEYS,
        "trouble_keys": TROUBLE_KEYS,
        "checkin_keys": CHECKIN_KEYS,
        "chart_weekly": line_chart(
            "chart-weekly", "Emails by week sent", labels, series(WEEKLY_KEYS)
        ),
        "chart_trouble": bar_chart(
            "chart-trouble",
            "Unsubscribes, complaints and bounces by week",
            labels,
            series(TROUBLE_KEYS),
        ),
        "chart_checkins": bar_chart(
            "chart-checkins",
            "Check-in answers by week sent",
            labels,
            series(CHECKIN_KEYS),
            stacked=True,
        ),
        "names": seams.campaign_names(),
        "health": health,
        "bounce_rate": bounce_rate,
        "bounce_limit": BOUNCE_RATE_LIMIT,
        "delivery": seams.delivery(now),
        "to_review": to_review,
    }


router = APIRouter()


@router.post("/admin/health/resume", include_in_schema=False)
def resume(session: OpsStaff, db: Db) -> Response:
    """Lift the automatic pause for spam complaints (``clinicmail health resume``)."""
    now = utcnow()
    with db.begin() as conn:
        was = complaints.resume(conn, now)
        if was is not None:
            audit.record(conn, session.user, "list.resume", "list", "campaign-email", now)
    return RedirectResponse("/admin", status_code=303)


def render(request: Request, ports: ConsolePorts) -> Response:
    return page(request, "dashboard/home.html", dashboard_context(ports))
