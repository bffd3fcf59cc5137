"""The root of every error clinicmail raises on purpose, and its four families.

Every exception class in our packages descends from :class:`ClinicmailError`, so the two edges
that face a person need one ``except`` each: the command line turns one into a single line on
stderr and exit 1 (``app/cli/errors.py``), the web app into a plain page or a small JSON
body (``app/errors.py``). Neither ever shows a traceback.

A member also inherits the built-in (or library) exception it has always been, the way
django-anymail's ``AnymailInvalidAddress(AnymailError, ValueError)`` does, so every existing
``except ValueError`` keeps catching what it caught. Errors from libraries (SQLAlchemy,
pydantic's ``ValidationError``, the SendGrid client's HTTP errors, ``smtplib``) are turned into
one of ours where they enter: the database layer, the settings loader, the transports. The
whole tree, drawn from the code (``scripts/error_tree.py``) and checked by the tests, is in
docs/architecture.md.

This package is the bottom layer: it imports nothing of ours, and every package may import it.
"""

from __future__ import annotations


class ClinicmailError(Exception):
    """Anything clinicmail raises on purpose. Its message is meant for the person who must act
    on it (an operator at the command line, a member of staff in the console): one sentence,
    no traceback."""


class ConfigError(ClinicmailError):
    """This installation is set up wrongly (a setting, the key file, the transport)."""


class InputError(ClinicmailError):
    """What a person, a file or a request gave us cannot be used; nothing was changed by it."""


class Unavailable(ClinicmailError):
    """A part we depend on (the database, DNS, the email provider) is missing or failed."""


class RequestRefused(ClinicmailError):
    """An HTTP request is turned away (not signed in, not allowed, too large, not found)."""
