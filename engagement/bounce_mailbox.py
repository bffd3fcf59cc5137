"""Reading SMTP bounces from the bounce mailbox (``CLINICMAIL_BOUNCE_MAILBOX``): the SMTP
transport's delivery events, as the SendGrid webhook is SendGrid's. The tick (or ``serve``'s own
job) calls :func:`read_bounces`; ``clinicmail doctor`` calls :func:`check`.

Each pass takes up to :data:`BATCH` messages not read before (:mod:`engagement.mailbox`), stores
each bounce of one of our sends as an event (:mod:`engagement.bounces`), flags the message
(only after its event is committed, so a crash reads it again and the event is stored once),
then applies the stored events as the SendGrid webhook's are applied: a hard bounce suppresses
the address before the next send. Messages that are not bounces of our mail are flagged and
left where they are.

A mailbox that cannot be read is an ERROR line naming what to check, the ``bounces.error`` of
``clinicmail tick --json`` and a failing ``clinicmail doctor`` check; it never stops a tick.
"""

from __future__ import annotations

import imaplib
import logging
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr

from engagement import bounces
from engagement.events import HARD
from engagement.mailbox import Mailbox, MailboxError, MailboxURL
from engagement.process import apply_pending
from storage import Database

log = logging.getLogger("clinicmail.bounces")

BATCH = 200  # messages per pass: a backlog drains over a few passes, none holds the tick long


@dataclass
class BounceReport:
    read: int = 0  # messages read this pass
    hard: int = 0
    soft: int = 0
    delayed: int = 0
    ignored: int = 0  # not a bounce of a send we hold
    error: str | None = None


def mailbox_url(configured: SecretStr | None) -> MailboxURL | None:
    """The mailbox ``CLINICMAIL_BOUNCE_MAILBOX`` names, or None when it is not set."""
    return MailboxURL.parse(configured.get_secret_value()) if configured else None


def read_bounces(
    db: Database, configured: SecretStr | None, now: datetime, *, limit: int = BATCH
) -> BounceReport:
    """One pass over the bounce mailbox ``configured`` names, if it is set. Never raises."""
    report = BounceReport()
    url = mailbox_url(configured)
    if url is None:
        return report
    try:
        with Mailbox(url) as box:
            for uid, raw in box.fetch(box.unread(limit)):
                _one(db, raw, now, report)
                box.done(uid)
    except MailboxError as exc:
        report.error = str(exc)
    except (imaplib.IMAP4.error, OSError) as exc:
        report.error = (
            f"the bounce mailbox {url.shown} failed while being read ({type(exc).__name__}); "
            "the messages not flagged are read again on the next pass"
        )
    except Exception as exc:  # the database, most likely: the messages stay unread for next time
        report.error = f"reading the bounce mailbox failed: {type(exc).__name__}"
    if report.error:
        log.error(report.error)
    if report.hard or report.soft or report.delayed:
        apply_pending(db.begin, now)
        log.info(
            "bounce mailbox: %d hard, %d soft, %d delayed",
            report.hard,
            report.soft,
            report.delayed,
        )
    return report


def _one(db: Database, raw: bytes, now: datetime, report: BounceReport) -> None:
    report.read += 1
    try:
        bounce = bounces.parse(raw)
    except Exception as exc:  # a message the detectors cannot walk: not one to retry forever
        log.warning("a message in the bounce mailbox could not be parsed (%s)", type(exc).__name__)
        bounce = None
    if bounce is None:
        report.ignored += 1
        return
    with db.begin() as conn:
        held = bounces.record(conn, bounce, now)
    if not held:
        report.ignored += 1
    elif not bounce.permanent:
        report.delayed += 1
    elif bounce.bounce_class == HARD:
        report.hard += 1
    else:
        report.soft += 1


def check(configured: SecretStr | None) -> str | None:
    """Log in and open the folder, changing nothing (``clinicmail doctor``): None when it
    works (or none is set), else what to fix."""
    url = mailbox_url(configured)
    if url is None:
        return None
    try:
        with Mailbox(url, timeout=15.0):
            return None
    except MailboxError as exc:
        return str(exc)
    except (imaplib.IMAP4.error, OSError) as exc:
        return f"the bounce mailbox {url.shown} failed ({type(exc).__name__})"
