"""``clinicmail sends list|retry|resolve`` and ``clinicmail transport status|reset|release``: the
operator's levers over the send ledger (:mod:`app.levers`), each audited."""

from __future__ import annotations

import click

from app.cli.context import open_context
from app.cli.errors import fail
from app.cli.options import parse_now
from app.cli.output import echo, echo_json


@click.group()
def sends() -> None:
    """List, retry and resolve sends that did not go out (failed or unknown)."""


@sends.command("list")
@click.option(
    "--status",
    type=click.Choice(["failed", "unknown"]),
    required=True,
    help="failed: refused for good; unknown: the request left and no answer came.",
)
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print the sends as JSON.")
def sends_list(status: str, limit: int, as_json: bool) -> None:
    """Sends in one status, newest first (opaque ids only: no address)."""
    from app.levers import list_sends

    rows = list_sends(open_context(), status, limit)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        echo(f"no {status} sends")
        return
    for r in rows:
        echo(
            f"{r['id']}\t{r['campaign_id']}/{r['step_id']}\tsubscriber {r['subscriber_id']}\t"
            f"attempts {r['attempts']}\t{r['error'] or ''}"
        )


@sends.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--since", metavar="ISO8601", help="Every failed send planned at or after this time.")
def sends_retry(ids: tuple[int, ...], since: str | None) -> None:
    """Send failed sends again (by id, or --since a time). Never to someone who has since
    unsubscribed, been suppressed or erased: those are skipped and named."""
    from app.levers import retry_sends

    if bool(ids) == bool(since):
        fail("give send ids or --since ISO8601 (one of them)")
    outcome = retry_sends(open_context(), ids, parse_now(since) if since else None, parse_now(None))
    echo(outcome.line())


@sends.command("resolve")
@click.argument("send", type=int)
@click.option("--sent", "as_sent", is_flag=True, help="It went (the relay's log shows it).")
@click.option("--resend", is_flag=True, help="It did not go: send it at the next tick.")
def sends_resolve(send: int, as_sent: bool, resend: bool) -> None:
    """Settle an unknown send after checking the relay's or provider's log."""
    from app.levers import resolve_send

    if as_sent == resend:
        fail("say --sent or --resend (one of them)")
    echo(resolve_send(open_context(), send, sent=as_sent, now=parse_now(None)))


@click.group()
def transport() -> None:
    """What holds delivery back, and clearing it."""


@transport.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def transport_status(as_json: bool) -> None:
    """The back-off, the account pause and the emails set aside, with their reasons."""
    from app.levers import status

    data = status(open_context())
    if as_json:
        echo_json(data)
        return
    echo(f"transport: {data['transport']}")
    echo(f"paused: {data['paused'] or 'no'}")
    echo(f"back-off until: {data['backoff_until'] or '-'}")
    for e in data["set_aside"]:
        echo(f"set aside: {e['campaign_id']}/{e['step_id']}/{e['variant_id']}: {e['reason']}")


@transport.command("reset")
def transport_reset() -> None:
    """Clear the back-off, the pause and what is set aside: the next tick tries at once."""
    from app.levers import reset_transport

    echo(reset_transport(open_context(), parse_now(None)))


@transport.command("release")
@click.argument("campaign")
@click.argument("step")
@click.option("--variant", help="The variant, when the step has several set aside.")
def transport_release(campaign: str, step: str, variant: str | None) -> None:
    """Release ONE email set aside for refused content (as `transport status` names it:
    CAMPAIGN/STEP/VARIANT); the next tick sends it. If the provider refuses it again it is set
    aside again, with a new staff alert."""
    from app.levers import release_set_aside

    echo(release_set_aside(open_context(), campaign, step, variant, parse_now(None)))
