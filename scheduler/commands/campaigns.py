"""``clinicmail campaigns journey``: the week-by-week emails a person with given symptoms gets.

(``validate``, ``list`` and ``preview`` live in scheduler/cli.py.)
"""

from __future__ import annotations

import json

import click

JOURNEY_REASONS = {
    "red_flag": (
        "no journey: a subscriber with a red-flag symptom is never enrolled in an educational "
        "series; they get one safety email at once and clinic staff are alerted"
    ),
    "audience": "no journey: these symptoms are outside the campaign's audience rule",
}


def register(cli: click.Group) -> None:
    group = cli.commands["campaigns"]
    assert isinstance(group, click.Group)
    group.add_command(journey_command)


@click.command("journey")
@click.argument("campaign")
@click.option(
    "--symptoms",
    required=True,
    help="Comma-separated symptom codes, e.g. lower_back,sciatica.",
)
@click.option(
    "--first-name", default=None, help="Show subjects with this first name (default: fallback)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the journey as JSON.")
def journey_command(campaign: str, symptoms: str, first_name: str | None, as_json: bool) -> None:
    """Show the emails, week by week, that a subscriber with --symptoms would receive.

    Honours each step's `when` rule, its variants, delay_days and the one-email-in-seven-days
    cap. Week 1 starts when the subscriber confirms.
    """
    from campaigns.journey import journey
    from campaigns.rendering import render_variant
    from scheduler.cli import _catalog, _context, fail
    from subscribers.symptoms import unknown_codes
    from templates import fill

    codes = frozenset(c.strip() for c in symptoms.split(",") if c.strip())
    bad = unknown_codes(codes)
    if bad:
        fail(f"unknown symptom code: {', '.join(bad)}")
    ctx = _context(migrate=False)
    _catalog(ctx)
    camp = ctx.catalog.get(campaign)
    if camp is None:
        fail(f"no campaign {campaign!r}; known: {', '.join(ctx.catalog.campaigns) or 'none'}")
    path = journey(camp, codes)
    subjects: list[str] = []
    for email in path.emails:
        variant = camp.step(email.step).variant(email.variant)
        rendered = render_variant(ctx.renderer, camp, variant)
        subjects.append(fill(rendered, {"first_name": first_name or "there"})[0])
    if as_json:
        data = path.as_dict()
        for item, subject in zip(data["emails"], subjects, strict=True):
            item["subject"] = subject
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    who = ", ".join(path.symptoms) or "no symptoms stated"
    if path.excluded:
        click.echo(f"{camp.id} for {who}: {JOURNEY_REASONS[path.excluded]}")
        return
    weeks = path.emails[-1].week if path.emails else 0
    click.echo(f"{camp.id} for {who}: {len(path.emails)} emails over {weeks} weeks")
    if not camp.active:
        click.echo(f"(the campaign is {camp.meta.status}; nobody receives it until it is active)")
    width = max((len(e.step) for e in path.emails), default=4)
    click.echo(f"{'week':>4}  {'day':>3}  {'step':<{width}}  {'variant':<8}  subject")
    for e, subject in zip(path.emails, subjects, strict=True):
        click.echo(f"{e.week:>4}  {e.day:>3}  {e.step:<{width}}  {e.variant:<8}  {subject}")
