"""The one place an error becomes what the user of the command line sees.

Any :class:`~core.errors.ClinicmailError` that leaves a command (a bad setting, a database
that cannot be opened, a refused import, a :func:`fail` of the command itself) is printed as
one line, ``clinicmail: <message>``, on stderr and exits 1. Click's own usage errors keep their
text and exit 1 too; Ctrl-C exits 130. Anything else is a bug: one line naming its type, exit 1,
and the traceback only with ``CLINICMAIL_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from app.cli.output import echo
from core.errors import ClinicmailError, InputError


class CommandError(InputError):
    """A command cannot do what it was asked (an unknown id, a file that cannot be read …)."""


def fail(message: str) -> NoReturn:
    """Stop the command with ``message`` as its one line."""
    raise CommandError(message)


def one_line(message: str) -> str:
    """Driver errors can span lines; the user gets exactly one."""
    return " ".join(message.split())


def run(group: click.Group) -> None:
    """Run ``group`` on ``sys.argv`` and turn whatever goes wrong into one line and an exit code."""
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Abort:
        echo("clinicmail: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except ClinicmailError as exc:
        echo(f"clinicmail: {one_line(str(exc))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("CLINICMAIL_DEBUG"):
            raise
        echo(
            f"clinicmail: unexpected error ({type(exc).__name__}); set CLINICMAIL_DEBUG=1 for details",
            err=True,
        )
        sys.exit(1)
