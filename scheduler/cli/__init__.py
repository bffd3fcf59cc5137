"""The ``clinicmail`` command line. Exit 0 on success, 1 on a user error with one clear line on
stderr, never a traceback (set CLINICMAIL_DEBUG=1 to see one).

One module per command group; each click function parses its options, asks the domain and
prints. Shared by all of them: :mod:`~scheduler.cli.output` (everything printed, cleaned of
terminal control characters; JSON), :mod:`~scheduler.cli.errors` (the one place an error
becomes a line and an exit code), :mod:`~scheduler.cli.context` (the parts a command works with)
and :mod:`~scheduler.cli.options` (times and segment rules given as options).
"""

from __future__ import annotations

import click

from scheduler.cli.apikeys import apikeys
from scheduler.cli.campaigns import campaigns
from scheduler.cli.context import close_all
from scheduler.cli.doctor import doctor
from scheduler.cli.errors import run
from scheduler.cli.health import health
from scheduler.cli.operations import backup, keys, restore, upgrade
from scheduler.cli.outbox import outbox
from scheduler.cli.sends import sends, transport
from scheduler.cli.service import init, serve, tick
from scheduler.cli.stats import stats
from scheduler.cli.subscribers import subscribers
from scheduler.cli.users import users
from scheduler.cli.webhooks import webhooks


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
