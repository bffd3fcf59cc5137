"""``clinicmail stats`` (engagement figures, table, chart) and ``clinicmail health`` (list health:
spam-complaint pause, sunset policy, engagement scores)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from scheduler import terminal
from scheduler.terminal import echo

if TYPE_CHECKING:
    from scheduler.context import AppContext


def register(cli: click.Group) -> None:
    cli.add_command(stats)
    cli.add_command(health)


def layout_of(ctx: AppContext) -> list[tuple[str, list[tuple[str, int]]]]:
    """Every campaign's (step id, number) in order, so unsent steps still show as zeros."""
    from campaigns.loader import CatalogError

    try:
        return [(c.id, [(s.id, s.number) for s in c.steps]) for c in ctx.catalog]
    except CatalogError:  # a broken library must not hide the figures already in the database
        return []


def stats_json(ctx: AppContext, now: datetime) -> dict[str, Any]:
    """The figures ``clinicmail stats --json`` prints (the console's dashboard shows the same)."""
    from campaigns.ledger import sends
    from engagement.process import apply_pending
    from engagement.stats import collect
    from scheduler.listhealth import summary

    # Figures include events accepted by the web process that no tick has applied yet.
    apply_pending(ctx.db.begin, now)
    layout = layout_of(ctx)
    with ctx.db.begin() as conn:
        data = collect(conn, sends, layout).as_dict()
        data["list_health"] = summary(conn, now, ctx.settings.sunset_weeks)
    return data


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1%}"
    return str(value)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--variants", is_flag=True, help="Show one row per content variant too.")
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE.png",
    help="Also draw human open and click rates by week and step to this PNG (or .svg/.pdf).",
)
def stats(as_json: bool, variants: bool, chart_path: Path | None) -> None:
    """Engagement per campaign, step, variant and symptom group.

    Sent, delivered, human opens (unique), clicks (unique), click-to-open, bounces, spam
    reports, unsubscribes and check-in answers (better / same / worse). Opens and clicks count
    people: privacy-proxy prefetches and link-scanner clicks are stored but not counted.
    Symptom groups are aggregated counts only. The list-health state (complaint pause, sunset)
    is shown too.
    """
    from campaigns.ledger import sends
    from engagement.chart import ChartError, check_target, draw
    from engagement.stats import COUNT_KEYS, weekly
    from scheduler.cli import _context, fail
    from storage import utcnow

    if chart_path is not None:
        try:
            check_target(chart_path)
        except ChartError as exc:
            fail(str(exc))
    ctx = _context()
    data = stats_json(ctx, utcnow())
    health_state = data["list_health"]
    if chart_path is not None:
        layout = layout_of(ctx)
        with ctx.db.begin() as conn:
            weeks = weekly(conn, sends)
        numbers = {(cid, sid): n for cid, steps in layout for sid, n in steps}
        try:
            drawn = draw(weeks, chart_path, numbers=numbers)
        except ChartError as exc:
            fail(str(exc))
    if as_json:
        echo(json.dumps(data))
        return

    console = terminal.console()
    keys = (*COUNT_KEYS[:7], "click_to_open", *COUNT_KEYS[7:])
    rows: list[tuple[str, dict[str, Any], bool]] = []  # (label, figures, bold)
    for camp in data["campaigns"]:
        rows.append((camp["id"], camp, True))
        for step in camp["steps"]:
            label = (
                f"  {step['number']:>2}. {step['step']}" if step["number"] else f"  {step['step']}"
            )
            rows.append((label, step, False))
            if variants:
                rows += [(f"      ↳ {v['variant']}", v, False) for v in step["variants"]]
    rows.append(("total", data["totals"], True))
    for table in _tables("clinicmail engagement", "campaign / step", rows, keys, console.width):
        console.print(table)
    group_rows: list[tuple[str, dict[str, Any], bool]] = []
    for g in data["symptom_groups"]:
        if g["sent"]:
            group_rows.append((g["label"], g, True))
            group_rows += [(f"  {c['code']}", c, False) for c in g["codes"] if c["sent"]]
    if group_rows:
        title = "by symptom group (all campaigns)"
        for table in _tables(title, "symptom group / code", group_rows, keys, console.width):
            console.print(table)
    console.print(_health_line(health_state))
    if chart_path is not None:
        console.print(f"chart: {chart_path} ({drawn} step lines)", soft_wrap=True)


_NAMES = {
    "unique_opens": "unique opens",
    "unique_clicks": "unique clicks",
    "spam_reports": "spam",
    "unsubscribes": "unsubs",
    "click_to_open": "click/open",
    "checkin_better": "better",
    "checkin_same": "same",
    "checkin_worse": "worse",
}
_FIGURE_WIDTH = 9  # a figure column with its padding and border


def _tables(
    title: str, first: str, rows: list[tuple[str, dict[str, Any], bool]], keys: Any, width: int
) -> list[Any]:
    """The figures as one table, or as several side by side parts when the terminal is too
    narrow for every column: labels are never cut and no line is wider than ``width``."""
    from rich.table import Table

    label_width = max([len(first), *(len(label) for label, _, _ in rows)]) + 4
    per = max(3, (width - label_width) // _FIGURE_WIDTH)
    parts = [keys[i : i + per] for i in range(0, len(keys), per)]
    tables = []
    for n, part in enumerate(parts, 1):
        suffix = f" ({n}/{len(parts)})" if len(parts) > 1 else ""
        table = Table(title=title + suffix)
        table.add_column(first, no_wrap=True)
        for k in part:
            table.add_column(_NAMES.get(k, k), justify="right")
        for label, figures, bold in rows:
            cells = [label, *(_fmt(figures[k]) for k in part)]
            table.add_row(*(f"[bold]{escape(c)}[/bold]" if bold else escape(c) for c in cells))
        tables.append(table)
    return tables


def _health_line(state: dict[str, Any]) -> str:
    today = state["complaints_today"]
    line = (
        f"spam complaints today: {today['complaints']} of {today['volume']} emails "
        f"({today['rate']:.2%}); "
    )
    if state["campaigns_paused"]:
        line += (
            f"[bold red]campaign email PAUSED since {state['paused_at'][:16]}[/bold red] "
            "(resume: clinicmail health resume)"
        )
    else:
        line += "campaign email running"
    sun = state["sunset"]
    if sun["weeks"]:
        line += f"; sunset after {sun['weeks']} weeks: {sun['paused']} paused, {sun['kept']} kept"
    else:
        line += "; sunset policy off"
    return line


@click.group()
def health() -> None:
    """List health: the spam-complaint pause, the sunset policy and engagement scores.

    Campaign email pauses on its own when more than 0.3% of a day's email is reported as spam
    (staff are emailed at 0.1%); `clinicmail health resume` lifts the pause. People with no
    human engagement for CLINICMAIL_SUNSET_WEEKS weeks are asked once whether they still want
    the emails and paused until they say yes.
    """


@health.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def health_status(as_json: bool) -> None:
    """Show the complaint pause, today's complaint rate, sunset counts and engagement scores.

    Scores (0-100) weigh how recently and how often each person opened or clicked over the
    last 26 weeks; only the number of people in each band is shown.
    """
    from engagement import scores
    from engagement.process import apply_pending
    from scheduler.cli import _context
    from scheduler.listhealth import summary
    from storage import utcnow

    ctx = _context()
    now = utcnow()
    apply_pending(ctx.db.begin, now)
    with ctx.db.begin() as conn:
        data = summary(conn, now, ctx.settings.sunset_weeks)
        data["engagement_scores"] = scores.buckets(scores.scores(conn, now).values())
    if as_json:
        echo(json.dumps(data))
        return
    console = terminal.console()
    console.print(_health_line(data))
    if data["paused_because"]:
        why = data["paused_because"]
        console.print(
            f"paused because of {why['day']}: {why['complaints']} spam reports of "
            f"{why['volume']} emails ({why['rate']:.2%})"
        )
    bands = ", ".join(f"{k} {v}" for k, v in data["engagement_scores"].items())
    console.print(f"engagement scores (confirmed subscribers): {bands}")


@health.command("resume")
def health_resume() -> None:
    """Resume campaign email after an automatic pause for spam complaints.

    Run it once you have found why people reported the email as spam. Email planned while
    paused goes out at the next tick (in each person's send window). If more complaints
    arrive the same day, campaign email pauses again.
    """
    from engagement import complaints
    from scheduler.cli import _context
    from storage import utcnow

    ctx = _context()
    with ctx.db.begin() as conn:
        was = complaints.resume(conn, utcnow())
    if was is None:
        echo("campaign email was not paused; nothing changed")
    else:
        echo(f"campaign email resumed (it was paused since {(was.paused_at or '')[:16]})")


@health.command("sunset")
@click.option("--dry-run", is_flag=True, help="Only count who would be asked; change nothing.")
@click.option("--now", "now_text", default=None, help="Run as if it were this ISO 8601 time.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def health_sunset(dry_run: bool, now_text: str | None, as_json: bool) -> None:
    """Run the sunset policy now (housekeeping also runs it every hour).

    Confirmed people with at least 4 campaign emails but no human open, click or check-in in
    the last CLINICMAIL_SUNSET_WEEKS weeks get one "still want these?" email and their
    campaign email pauses until they click "keep me". With CLINICMAIL_SUNSET_WEEKS=0 the
    policy is off and nothing happens.
    """
    from engagement.process import apply_pending
    from scheduler.cli import _context, _parse_now
    from scheduler.listhealth import run_sunset

    now = _parse_now(now_text)
    ctx = _context()
    if not dry_run:
        apply_pending(ctx.db.begin, now)
    report = run_sunset(ctx, now, dry_run=dry_run)
    if as_json:
        echo(json.dumps(report.as_dict()))
        return
    if not report.weeks:
        echo("the sunset policy is off (CLINICMAIL_SUNSET_WEEKS=0); nothing changed")
        return
    verb = "would ask" if dry_run else "asked"
    echo(
        f"{verb} {report.asked} dormant subscribers (no human engagement in {report.weeks} "
        f"weeks, at least {report.min_sends} emails); {report.reactivated} "
        f"{'would be' if dry_run else ''} re-activated by later engagement; "
        f"{report.paused} paused, {report.kept} kept".replace("  ", " ")
    )
