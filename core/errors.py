"""The root of every error clinicmail raises on purpose, and its four families.

Every exception class in our packages descends from :class:`ClinicmailError`, so the two edges
that face a person need one ``except`` each: the command line turns one into a single line on
stderr and exit 1 (``scheduler/cli/errors.py``), the web app into a plain page or a small JSON
body (``scheduler/errors.py``). Neither ever shows a traceback.

A member also inherits the built-in (or library) exception it has always been, the way
django-anymail's ``AnymailInvalidAddress(AnymailError, ValueError)`` does, so every existing
``except ValueError`` keeps catching what it caught. Errors from libraries (SQLAlchemy,
pydantic's ``ValidationError``, the SendGrid client's HTTP errors, ``smtplib``) are turned into
one of ours where they enter: the database layer, the settings loader, the transports. The
tree (family, then member, then the built-in it keeps)::

    ClinicmailError                          (Exception)
    ├── ConfigError       this installation is set up wrongly; an operator fixes it
    │   ├── SettingsError                    scheduler/settings.py                ValueError
    │   ├── _Missing                         scheduler/settings.py                ValueError
    │   ├── KeyFileError                     storage/keys.py                      RuntimeError
    │   └── TransportConfigError             scheduler/transports/base.py         ValueError
    │                                        (also a TransportError)
    ├── InputError        what a person, a file or a request gave us cannot be used
    │   ├── InvalidAddress                   subscribers/addresses.py             ValueError
    │   ├── ImportFileError                  subscribers/importer.py              ValueError
    │   ├── TemplateProblem                  templates/render.py                  ValueError
    │   ├── TooMuchWork                      templates/render.py   jinja2's SecurityError
    │   ├── CatalogError                     campaigns/loader.py                  ValueError
    │   ├── AuthoringError                   campaigns/authoring.py               ValueError
    │   ├── NewsletterError                  campaigns/newsletters.py             ValueError
    │   ├── VersionError                     campaigns/versions.py                ValueError
    │   ├── BadBatch                         engagement/ingest.py                 ValueError
    │   ├── ChartError                       engagement/chart.py                  ValueError
    │   ├── AccountError                     staff/accounts.py                    ValueError
    │   │   ├── NoSuchAccount                staff/accounts.py   (the console: 404)
    │   │   └── AccountConflict              staff/accounts.py   (the console: 409)
    │   ├── WeakPassword                     staff/passwords.py                   ValueError
    │   ├── BroadcastRefused                 scheduler/broadcasting.py            ValueError
    │   └── CommandError                     scheduler/cli/errors.py
    ├── Unavailable       a part we depend on is missing or did not answer
    │   ├── DatabaseError                    storage/db.py                        RuntimeError
    │   ├── DnsUnavailable                   deliverability/lookup.py             RuntimeError
    │   ├── MailboxError                     scheduler/mailbox.py                 RuntimeError
    │   └── TransportError                   scheduler/transports/base.py
    └── RequestRefused    an HTTP request is turned away before it is served
        ├── SignInRequired                   console/auth.py
        ├── Forbidden                        console/auth.py
        ├── BodyTooLarge                     scheduler/bodylimit.py
        ├── PasswordsBusy                    staff/passwords.py                   RuntimeError
        └── _NotFound                        console/newsletters.py

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
