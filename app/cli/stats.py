"""``clinicmail stats``: engagement figures as tables, JSON or a chart. The figures come from
:mod:`app.stats` (the console's dashboard shows the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from app.cli import output
from app.cli.context import open_context
from app.cli.output import echo_json


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
    is shown too, and each campaign's goal conversion: the people who reached its goal (say,
    booked) within its window of which email, per step and per symptom group.
    """
    from app.stats import stats_json, weekly_figures
    from engagement.chart import check_target, draw
    from engagement.stats import COUNT_KEYS
    from storage import utcnow

    if chart_path is not None:
        check_target(chart_path)
    ctx = open_context()
    data = stats_json(ctx, utcnow())
    health_state = data["list_health"]
    if chart_path is not None:
        weeks, numbers = weekly_figures(ctx)
        drawn = draw(weeks, chart_path, numbers=numbers)
    if as_json:
        echo_json(data)
        return

    console = output.console()
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
    for table in goal_tables(data.get("goals", []), console.width):
        console.print(table)
    console.print(health_line(health_state))
    if chart_path is not None:
        console.print(f"chart: {chart_path} ({drawn} step lines)", soft_wrap=True)


GOAL_KEYS = ("people", "converted", "rate")


def goal_tables(goals: list[dict[str, Any]], width: int) -> list[Any]:
    """Each campaign's goal conversion in people, per step and per symptom group and code
    (groups and codes nobody in the series has are left out)."""
    tables = []
    for goal in goals:
        rows: list[tuple[str, dict[str, Any], bool]] = [("all emails", goal, True)]
        rows += [(f"  {s['step']}", s, False) for s in goal["steps"]]
        for g in goal["symptom_groups"]:
            if g["people"]:
                rows.append((g["label"], g, True))
                rows += [(f"  {c['code']}", c, False) for c in g["codes"] if c["people"]]
        title = (
            f"{goal['id']}: {goal['goal']} within {goal['window_days']} days of an email (people)"
        )
        tables += _tables(title, "step / symptom group / code", rows, GOAL_KEYS, width)
    return tables


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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1%}"
    return str(value)


def health_line(state: dict[str, Any]) -> str:
    """One line on the list's health (``stats`` ends with it, ``health status`` starts with it)."""
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
