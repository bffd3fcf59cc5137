"""``clinicmail health status|resume|sunset``: list health (the spam-complaint pause, the
sunset policy, engagement scores)."""

from __future__ import annotations

import click

from app.cli import output
from app.cli.context import open_context
from app.cli.options import parse_now
from app.cli.output import echo, echo_json
from app.cli.stats import health_line


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
    from app.listhealth import summary
    from engagement import scores
    from engagement.process import apply_pending
    from storage import utcnow

    ctx = open_context()
    now = utcnow()
    apply_pending(ctx.db.begin, now)
    with ctx.db.begin() as conn:
        data = summary(conn, now, ctx.settings.sunset_weeks)
        data["engagement_scores"] = scores.buckets(scores.scores(conn, now).values())
    if as_json:
        echo_json(data)
        return
    console = output.console()
    console.print(health_line(data))
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
    from storage import utcnow

    ctx = open_context()
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
    from app.listhealth import run_sunset
    from engagement.process import apply_pending

    now = parse_now(now_text)
    ctx = open_context()
    if not dry_run:
        apply_pending(ctx.db.begin, now)
    report = run_sunset(ctx, now, dry_run=dry_run)
    if as_json:
        echo_json(report.as_dict())
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
