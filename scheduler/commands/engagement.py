"""``clinicmail stats``: engagement per campaign and step (and variant with ``--variants``)."""

from __future__ import annotations

import json

import click


def register(cli: click.Group) -> None:
    cli.add_command(stats)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--variants", is_flag=True, help="Show one row per content variant too.")
def stats(as_json: bool, variants: bool) -> None:
    """Engagement per campaign and step: sent, delivered, opens, clicks, bounces, complaints.

    Opens count people, not mail-privacy prefetches (machine opens are stored but not counted).
    """
    from campaigns.loader import CatalogError
    from engagement.process import apply_pending
    from engagement.stats import KEYS, collect
    from scheduler.cli import _context
    from scheduler.ledger import sends
    from storage import utcnow

    ctx = _context()
    # Figures include events accepted by the web process that no tick has applied yet.
    apply_pending(ctx.db.begin, utcnow())
    try:
        layout = [(c.id, [(s.id, s.number) for s in c.steps]) for c in ctx.catalog]
    except CatalogError:  # a broken library must not hide the figures already in the database
        layout = []
    with ctx.db.begin() as conn:
        result = collect(conn, sends, layout)
    data = result.as_dict()
    if as_json:
        click.echo(json.dumps(data))
        return

    from rich.console import Console
    from rich.table import Table

    headers = ["campaign / step", *(k.replace("_", " ") for k in KEYS)]
    table = Table(*headers, title="clinicmail engagement")
    for camp in data["campaigns"]:
        table.add_row(f"[bold]{camp['id']}[/bold]", *(f"[bold]{camp[k]}[/bold]" for k in KEYS))
        for step in camp["steps"]:
            label = (
                f"  {step['number']:>2}. {step['step']}" if step["number"] else f"  {step['step']}"
            )
            table.add_row(label, *(str(step[k]) for k in KEYS))
            if variants:
                for v in step["variants"]:
                    table.add_row(f"      ↳ {v['variant']}", *(str(v[k]) for k in KEYS))
    table.add_row("[bold]total[/bold]", *(f"[bold]{data['totals'][k]}[/bold]" for k in KEYS))
    Console(width=200).print(table)
