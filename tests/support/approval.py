"""A clinician's approval, given through the real command line (campaigns.review).

- :func:`approve_library`: with the ``sendgrid`` or ``smtp`` transport nothing from a campaign
  is sent until a clinician of the installation approved it. A test that expects campaign email
  through those transports calls it once its campaigns folder is set, before the first ``tick``
  (the ``sg_cli`` fixture does).
- :func:`broadcast_approved`: ``campaigns broadcast`` schedules only text a clinician approved;
  a test that schedules one calls this instead of the bare command.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from tests.support.cli import CLI, Run

REVIEWER = "library-reviewer@clinic.example"
REVIEWER_PASSWORD = "a long clinician passphrase"


def _with_stdin(cli: CLI, text: str, *args: str) -> Run:
    old = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        return cli(*args)
    finally:
        sys.stdin = old


def approve_library(cli: CLI, *, reviewer: str = REVIEWER) -> list[str]:
    """Create the clinician ``reviewer`` (once) and approve every campaign of the library that
    awaits review with ``clinicmail campaigns approve``; returns the campaigns approved.

    Before the database exists this is one step with ``init`` that a template stands in for
    (an argon2 hash per approval is most of a second): then nothing is approved in this test's
    own run and the list is empty."""
    approved: list[str] = []
    if not cli.initialised:
        assert (
            cli.init_then(
                f"approved-library:{reviewer}", lambda: approved.extend(_approve(cli, reviewer))
            ).code
            == 0
        )
        return approved
    return _approve(cli, reviewer)


def _approve(cli: CLI, reviewer: str) -> list[str]:
    _reviewer(cli, reviewer)
    campaigns = cli("campaigns", "list")
    assert campaigns.code == 0, campaigns.err
    approved = []
    for line in campaigns.out.splitlines():
        campaign_id, _, rest = line.partition("\t")
        if not campaign_id or rest.startswith("broken"):
            continue
        run = _with_stdin(
            cli, REVIEWER_PASSWORD + "\n", "campaigns", "approve", campaign_id, "--as", reviewer
        )
        if run.code == 0:
            approved.append(campaign_id)
        else:
            assert "awaits review" in run.err, run.err  # approved already
    return approved


def _reviewer(cli: CLI, reviewer: str) -> None:
    listed = _with_stdin(cli, "", "users", "list")
    if reviewer not in listed.out:
        added = _with_stdin(
            cli, REVIEWER_PASSWORD + "\n", "users", "add", reviewer, "--role", "clinician"
        )
        assert added.code == 0, added.err


def broadcast_approved(cli: CLI, *args: str, reviewer: str = REVIEWER) -> Run:
    """``clinicmail campaigns broadcast ARGS`` through the clinical review, as an operator does
    it: the first run puts the text in the review queue, the clinician ``reviewer`` approves
    it with ``clinicmail campaigns approve broadcast.ID``, and the same command again schedules
    it. Returns the last run (a refusal as soon as one comes)."""
    from campaigns.broadcasts import slug_from

    first = cli("campaigns", "broadcast", *args)
    waiting = "waiting for a clinician's review" in first.out or '"in_review"' in first.out
    if first.code != 0 or not waiting:
        return first
    slug = args[args.index("--id") + 1] if "--id" in args else slug_from(Path(args[0]).stem)
    _reviewer(cli, reviewer)
    approved = _with_stdin(
        cli,
        REVIEWER_PASSWORD + "\n",
        "campaigns",
        "approve",
        f"broadcast.{slug}",
        "--as",
        reviewer,
    )
    assert approved.code == 0, approved.err
    return cli("campaigns", "broadcast", *args)
