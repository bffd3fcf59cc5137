"""The ``clinicmail`` command line. Exit 0 on success, 1 on a user error with one clear line on
stderr, never a traceback (set CLINICMAIL_DEBUG=1 to see one).

One module per command group; each click function parses its options, asks the domain and
prints. Shared by all of them: :mod:`~app.cli.output` (everything printed, cleaned of
terminal control characters; JSON), :mod:`~app.cli.errors` (the one place an error
becomes a line and an exit code), :mod:`~app.cli.context` (the parts a command works with)
and :mod:`~app.cli.options` (times and segment rules given as options).
"""

from __future__ import annotations

import click

from app.cli.apikeys import apikeys
from app.cli.campaigns import campaigns
from app.cli.context import close_all
from app.cli.doctor import doctor
from app.cli.errors import run
from app.cli.health import health
from app.cli.operations import backup, keys, restore, upgrade
from app.cli.outbox import outbox
from app.cli.sends import sends, transport
from app.cli.service import init, serve, tick
from app.cli.stats import stats
from app.cli.subscribers import subscribers
from app.cli.users import users
from app.cli.webhooks import webhooks


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="clinicmail")
def cli() -> None:
    """clinicmail: consent-first educational email for back and neck pain clinics.

    Settings come from CLINICMAIL_* environment variables (and a .env file); see README.md.
    """


for command in (
    init,
    upgrade,
    backup,
    restore,
    keys,
    subscribers,
    campaigns,
    tick,
    serve,
    outbox,
    stats,
    health,
    users,
    doctor,
    apikeys,
    webhooks,
    sends,
    transport,
):
    cli.add_command(command)


def main() -> None:
    """Console entry point (``clinicmail``): never a traceback for the user."""
    try:
        run(cli)
    finally:
        close_all()
