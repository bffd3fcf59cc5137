"""The engagement figures ``clinicmail stats --json`` prints and the console's dashboard shows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from app.context import AppContext
    from engagement.stats import WeekRow


def layout_of(ctx: AppContext) -> list[tuple[str, list[tuple[str, int]]]]:
    """Every campaign's (step id, number) in order, so unsent steps still show as zeros."""
    from campaigns.loader import CatalogError

    try:
        return [(c.id, [(s.id, s.number) for s in c.steps]) for c in ctx.catalog]
    except CatalogError:  # a broken library must not hide the figures already in the database
        return []


def stats_json(ctx: AppContext, now: datetime) -> dict[str, Any]:
    """The figures, with the list-health state under ``list_health``."""
    from app.listhealth import summary
    from engagement.process import apply_pending
    from engagement.stats import collect

    # Figures include events accepted by the web process that no tick has applied yet.
    apply_pending(ctx.db.begin, now)
    layout = layout_of(ctx)
    with ctx.db.begin() as conn:
        data = collect(conn, layout).as_dict()
        data["list_health"] = summary(conn, now, ctx.settings.sunset_weeks)
        data["goals"] = goal_conversions(ctx, conn)
    return data


def goal_conversions(ctx: AppContext, conn: Connection) -> list[dict[str, object]]:
    """Each campaign with a goal: who reached it after which email (campaigns.goals)."""
    from campaigns.goals import conversions
    from campaigns.loader import CatalogError

    try:
        campaigns = list(ctx.catalog)
    except CatalogError:
        return []
    return [c for c in (conversions(conn, campaign) for campaign in campaigns) if c is not None]


def weekly_figures(ctx: AppContext) -> tuple[list[WeekRow], dict[tuple[str, str], int]]:
    """Human open and click rates by week and step (for the chart), and each step's number."""
    from engagement.stats import weekly

    with ctx.db.begin() as conn:
        weeks = weekly(conn)
    numbers = {(cid, sid): n for cid, steps in layout_of(ctx) for sid, n in steps}
    return weeks, numbers
