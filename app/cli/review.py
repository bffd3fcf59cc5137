"""``clinicmail campaigns approve|signoff-pack``: a clinician's approval from the command line,
and the sign-off pack that says what they approve. The workflow is
:mod:`campaigns.review`'s; this module parses, asks for the password and prints."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli.context import open_context
from app.cli.errors import fail
from app.cli.options import read_password
from app.cli.output import echo


@click.command("approve")
@click.argument("campaign")
@click.option(
    "--as",
    "email",
    required=True,
    metavar="EMAIL",
    help="The clinician approving (their console account; the password is read from standard "
    "input when it is not a terminal).",
)
@click.option(
    "--version",
    "number",
    type=int,
    default=None,
    help="Which version, when more than one awaits review.",
)
@click.option("--note", default="", help="The reviewer's note, kept with the approval.")
def approve(campaign: str, email: str, number: int | None, note: str) -> None:
    """Approve CAMPAIGN's version that awaits review and make it live.

    Only a clinician approves, and never a version they edited. CAMPAIGN may also name a
    newsletter awaiting review (its id, or broadcast.ID): it is approved, and scheduled with
    'clinicmail campaigns broadcast' or in the console. Audited.
    """
    from app.approvals import ApprovalRefused, sign_in_clinician
    from app.approvals import approve as give
    from storage import utcnow

    ctx = open_context()
    password = read_password("Password", confirm=False)
    now = utcnow()
    try:
        reviewer = sign_in_clinician(ctx, email, password, now)
        done = give(ctx, campaign, reviewer, note, now, number=number)
    except ApprovalRefused as exc:
        fail(str(exc))
    if done.what == "newsletter":
        echo(
            f"approved newsletter {done.name!r}; schedule it with 'clinicmail campaigns broadcast' "
            "or in the console"
        )
        return
    echo(f"approved {done.name} version {done.number}; it is live")


@click.command("signoff-pack")
@click.argument("campaign")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the PDF.",
)
@click.option("--html", "as_html", is_flag=True, help="Write the printable HTML instead of a PDF.")
def signoff_pack(campaign: str, out: Path, as_html: bool) -> None:
    """Write CAMPAIGN's sign-off pack: what the clinician signs.

    Intended use, who it is for and not for, every email as sent (with this clinic's settings),
    the journey per symptom group, the warning signs and their actions, the sources, the
    content version and its fingerprint, the reviewer and the review dates. It describes the
    version awaiting review, or else the live one.
    """
    from app.signoff import PackError, build_pack, pdf_bytes

    ctx = open_context()
    try:
        pack = build_pack(ctx, campaign)
        data = pack.html.encode("utf-8") if as_html else pdf_bytes(pack.html)
    except PackError as exc:
        fail(str(exc))
    try:
        out.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    echo(f"wrote the sign-off pack for {campaign} version {pack.number} to {out}")
