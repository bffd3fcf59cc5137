"""How long what is kept about people and staff stays (docs/privacy.md): the hourly
housekeeping applies the ``CLINICMAIL_RETAIN_*`` settings here.

* raw webhook event payloads (``email_events.payload``, which name the recipient's address):
  emptied once applied and older than the setting; the structured facts (kind, send, time)
  stay, for stats and so a replayed batch is still recognised;
* outbox messages (``outbox``: whole emails, the address included): deleted;
* staff sign-in attempts (``login_attempts``): deleted (the lockout looks back 15 minutes);
* signups never confirmed: deleted by :func:`subscribers.housekeeping.expire_unconfirmed` with
  the setting as its age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, update

from engagement.tables import email_events
from scheduler.runtime import ClockSettings
from staff.tables import login_attempts
from transports.tables import outbox

EMPTIED = "{}"


@dataclass(frozen=True)
class Trimmed:
    event_payloads: int
    outbox_messages: int
    login_attempts: int


def trim(conn: Connection, settings: ClockSettings, now: datetime) -> Trimmed:
    """Apply the retention settings to what ``now`` has outlived."""
    payloads = conn.execute(
        update(email_events)
        .where(
            email_events.c.applied_at.is_not(None),
            email_events.c.received_at < now - timedelta(days=settings.retain_event_payloads_days),
            email_events.c.payload != EMPTIED,
        )
        .values(payload=EMPTIED)
    ).rowcount
    messages = conn.execute(
        delete(outbox).where(
            outbox.c.created_at < now - timedelta(days=settings.retain_outbox_days)
        )
    ).rowcount
    attempts = conn.execute(
        delete(login_attempts).where(
            login_attempts.c.at < now - timedelta(days=settings.retain_login_attempts_days)
        )
    ).rowcount
    return Trimmed(int(payloads or 0), int(messages or 0), int(attempts or 0))
