"""A clinician's approval of the bundled library, given through the real command line.

With the ``sendgrid`` or ``smtp`` transport nothing from a campaign is sent until a clinician of
the installation approved it (campaigns.review). A test that expects campaign email through
those transports calls :func:`approve_library` once its environment is set (the transport
included), before the first ``tick``.
"""

from __future__ import annotations

import io
import sys

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
    awaits review with ``clinicmail campaigns approve``; returns the campaigns approved."""
    cli.init()
    listed = _with_stdin(cli, "", "users", "list")
    if reviewer not in listed.out:
        added = _with_stdin(
            cli, REVIEWER_PASSWORD + "\n", "users", "add", reviewer, "--role", "clinician"
        )
        assert added.code == 0, added.err
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
