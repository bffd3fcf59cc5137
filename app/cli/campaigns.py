"""``clinicmail campaigns``: check the library (``validate``, ``list``, ``preview``), follow one
person through a campaign (``journey``), and move content versions in and out of the database as
campaign folders (``import``, ``export``). The broadcasts in this group are in
:mod:`app.cli.broadcasts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from app.cli.broadcasts import broadcast, broadcasts, cancel_broadcast
from app.cli.context import check_catalog, open_context
from app.cli.errors import fail
from app.cli.options import parse_symptoms
from app.cli.output import echo, echo_json
from app.cli.review import approve, signoff_pack
from campaigns.loader import load_catalog
from templates.checkin import ANSWERS

if TYPE_CHECKING:
    from app.context import AppContext
    from campaigns.definitions import Campaign

JOURNEY_REASONS = {
    "red_flag": (
        "no journey: a subscriber with a red-flag symptom is never enrolled in an educational "
        "series; they get one safety email at once and clinic staff are alerted"
    ),
    "audience": "no journey: these symptoms are outside the campaign's audience rule",
}


@click.group()
def campaigns() -> None:
    """Validate, list and preview campaigns."""


campaigns.add_command(broadcast)
campaigns.add_command(broadcasts)
campaigns.add_command(cancel_broadcast)
campaigns.add_command(approve)
campaigns.add_command(signoff_pack)


def _campaign(ctx: AppContext, campaign_id: str) -> Campaign:
    camp = ctx.catalog.get(campaign_id)
    if camp is None:
        fail(f"no campaign {campaign_id!r}; known: {', '.join(ctx.catalog.campaigns) or 'none'}")
    return camp


@campaigns.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--strict", is_flag=True, help="Fail on content-gate warnings too (reading grade, length …)."
)
def validate(directory: Path | None, strict: bool) -> None:
    """Check every campaign and template in DIRECTORY (default: the configured library).

    Then the content gate reads every email: phrases a clinic should not send, subjects that
    name a condition, reading grade, length, and the urgent-care section in week 1. Its errors
    fail; its warnings are listed and fail only with --strict. Templates are rendered with this
    installation's settings (clinic name, address …), exactly as they will be when email is sent.
    """
    from campaigns.gate import check_campaign

    ctx = open_context(migrate=False)  # the renderer only: the database is not opened
    if directory is None:
        directory = ctx.campaigns_dir
    catalog, problems = load_catalog(directory, ctx.renderer)
    if problems:
        for p in problems:
            echo(str(p), err=True)
        fail(f"{len(problems)} problem(s) in {directory}")
    findings = [f for c in catalog for f in check_campaign(c)]
    for f in findings:
        echo(str(f), err=True)
    blocking = [f for f in findings if strict or f.severity == "error"]
    if blocking:
        fail(f"{len(blocking)} problem(s) in {directory}")
    steps = sum(len(c.steps) for c in catalog)
    warned = f" ({len(findings)} content warning(s))" if findings else ""
    echo(f"ok: {len(catalog)} campaign(s), {steps} step(s) in {directory}{warned}")


@campaigns.command("list")
def list_() -> None:
    """List campaigns with their status and steps."""
    ctx = open_context(migrate=False)
    check_catalog(ctx)
    for c in ctx.catalog:
        if c.id in ctx.broken:
            echo(f"{c.id}\tbroken\t{len(ctx.broken[c.id])} problem(s)\tset aside")
            continue
        echo(f"{c.id}\t{c.meta.status}\t{len(c.steps)} steps\t{c.meta.name}")


@campaigns.command()
@click.argument("campaign")
@click.argument("step")
@click.option(
    "--symptoms", default="", help="Comma-separated symptom codes, e.g. lower_back,sciatica."
)
@click.option(
    "--format", "fmt", type=click.Choice(["html", "text"]), default="text", show_default=True
)
@click.option(
    "--first-name", default=None, help="Preview with this first name (default: the fallback)."
)
def preview(campaign: str, step: str, symptoms: str, fmt: str, first_name: str | None) -> None:
    """Show STEP of CAMPAIGN as a subscriber with --symptoms would get it.

    STEP is a step id (e.g. why-your-back-locks-up) or its number (e.g. 1).
    """
    from campaigns.previews import preview_email
    from subscribers.segments import Facts

    ctx = open_context(migrate=False)
    check_catalog(ctx)
    camp = _campaign(ctx, campaign)
    chosen = next(
        (s for s in camp.steps if s.id == step or (step.isdigit() and s.number == int(step))), None
    )
    if chosen is None:
        fail(
            f"campaign {campaign!r} has no step {step!r}; steps: {', '.join(s.id for s in camp.steps)}"
        )
    codes = parse_symptoms(symptoms)
    variant = chosen.variant_for(Facts(symptoms=codes))
    subject, html_part, text_part = preview_email(
        ctx.renderer, camp, variant, ctx.settings.base_url, first_name
    )
    if fmt == "html":
        echo(html_part)
    else:
        echo(f"Subject: {subject}\nVariant: {variant.id}\n\n{text_part}")


@campaigns.command("journey")
@click.argument("campaign")
@click.option(
    "--symptoms",
    required=True,
    help="Comma-separated symptom codes, e.g. lower_back,sciatica.",
)
@click.option(
    "--first-name", default=None, help="Show subjects with this first name (default: fallback)."
)
@click.option(
    "--clicked",
    multiple=True,
    metavar="STEP",
    help="Simulate a click on a link in this step's email (a step id, or CAMPAIGN/STEP for "
    "another campaign); repeat for more. It counts from when that email is sent.",
)
@click.option("--opened", multiple=True, metavar="STEP", help="Simulate opening this step's email.")
@click.option(
    "--checkin",
    type=click.Choice(ANSWERS),
    default=None,
    help='Simulate the latest check-in answer ("How is your back this week?").',
)
@click.option("--json", "as_json", is_flag=True, help="Print the journey as JSON.")
def journey_(
    campaign: str,
    symptoms: str,
    first_name: str | None,
    clicked: tuple[str, ...],
    opened: tuple[str, ...],
    checkin: str | None,
    as_json: bool,
) -> None:
    """Show the emails, week by week, that a subscriber with --symptoms would receive.

    Honours each step's `when` rule, its variants, delay_days and the one-email-in-seven-days
    cap. Week 1 starts when the subscriber confirms. --clicked, --opened and --checkin preview
    the branches that engagement rules (clicked:, opened:, checkin:) choose.
    """
    from campaigns.journey import Engagement, journey
    from campaigns.previews import journey_subjects

    codes = parse_symptoms(symptoms)
    ctx = open_context(migrate=False)
    check_catalog(ctx)
    camp = _campaign(ctx, campaign)
    steps = {c.id: [s.id for s in c.steps] for c in ctx.catalog}

    def target(ref: str, option: str) -> tuple[str, str]:
        cid, _, step = ref.partition("/") if "/" in ref else (camp.id, "/", ref)
        if cid not in steps:
            fail(f"{option} {ref}: no campaign {cid!r}; known: {', '.join(steps)}")
        if step not in steps[cid]:
            fail(f"{option} {ref}: no step {step!r} in {cid}; steps: {', '.join(steps[cid])}")
        return cid, step

    engagement = Engagement(
        clicked=frozenset(target(r, "--clicked") for r in clicked),
        opened=frozenset(target(r, "--opened") for r in opened),
        checkin=checkin,
    )
    path = journey(camp, codes, engagement)
    subjects = journey_subjects(ctx.renderer, camp, path, first_name)
    if as_json:
        data = path.as_dict()
        for item, subject in zip(data["emails"], subjects, strict=True):
            item["subject"] = subject
        echo_json(data, ensure_ascii=False)
        return
    who = ", ".join(path.symptoms) or "no symptoms stated"
    if path.excluded:
        echo(f"{camp.id} for {who}: {JOURNEY_REASONS[path.excluded]}")
        return
    weeks = path.emails[-1].week if path.emails else 0
    echo(f"{camp.id} for {who}: {len(path.emails)} emails over {weeks} weeks")
    if not camp.active:
        echo(f"(the campaign is {camp.meta.status}; nobody receives it until it is active)")
    width = max((len(e.step) for e in path.emails), default=4)
    echo(f"{'week':>4}  {'day':>3}  {'step':<{width}}  {'variant':<8}  subject")
    for e, subject in zip(path.emails, subjects, strict=True):
        echo(f"{e.week:>4}  {e.day:>3}  {e.step:<{width}}  {e.variant:<8}  {subject}")


@campaigns.command("import")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the outcome per campaign as JSON.")
def import_(directory: Path, as_json: bool) -> None:
    """Import every campaign folder in DIRECTORY as a new content version, in review.

    A folder never carries an approval (an approval.json in it is ignored): nothing imported
    goes live until a clinician of this installation approves it (clinicmail campaigns approve,
    or the console's review screen). Identical content is skipped. Nothing is imported when any
    folder has a problem.
    """
    from app.content_folders import import_folders
    from storage import utcnow

    ctx = open_context()
    if not directory.is_dir():
        fail(f"{directory} is not a directory")
    catalog, problems = load_catalog(directory, ctx.renderer)
    if problems:
        for p in problems:
            echo(str(p), err=True)
        fail(f"{len(problems)} problem(s) in {directory}; nothing was imported")
    _ = ctx.catalog  # the library is seeded first, so imports become newer versions
    outcome = import_folders(ctx.db, catalog, directory, utcnow())
    if as_json:
        echo_json(outcome)
        return
    for cid, state in outcome.items():
        echo(f"{cid}: {state.replace('_', ' ')}")


@campaigns.command("export")
@click.argument("campaign")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--version", "number", type=int, help="Version number (default: the active one).")
@click.option("--force", is_flag=True, help="Overwrite DIRECTORY/CAMPAIGN if it exists.")
def export(campaign: str, directory: Path, number: int | None, force: bool) -> None:
    """Write CAMPAIGN's content to DIRECTORY/CAMPAIGN as a campaign folder (keep it in git,
    edit it, import it back). An approval never travels with it: an imported folder waits for
    a clinician's review here."""
    from app.content_folders import version_to_export, write_folder
    from campaigns import versions

    ctx = open_context()
    _ = ctx.catalog
    with ctx.db.begin() as conn:
        history = versions.versions_of(conn, campaign)
    if not history:
        fail(f"no campaign {campaign!r}")
    chosen = version_to_export(history, number)
    if chosen is None:
        fail(f"campaign {campaign!r} has no version {number}")
    target = directory / campaign
    if target.exists() and any(target.iterdir()) and not force:
        fail(f"{target} already exists and is not empty; use --force to overwrite it")
    write_folder(chosen, target)
    echo(f"exported {campaign} version {chosen.number} ({chosen.state}) to {target}")
