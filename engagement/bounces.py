"""Bounces that come back by email (the SMTP transport), turned into the same stored events as
SendGrid's bounce and deferred events, so they are applied by the same code
(:mod:`engagement.process`): a hard bounce suppresses the address.

Which recipients failed, and whether for good, is read by ``flufl.bounce`` (GNU Mailman's
detectors): RFC 3464 delivery status notifications first, then the usual non-standard formats
(Exim, Postfix, qmail, Exchange, Yahoo…). Which send bounced is read from the
``X-Clinicmail-Send-Id`` header of the returned message (every message we send carries it, and it
holds only the opaque send id): in a returned ``message/rfc822`` or ``text/rfc822-headers`` part,
or quoted in the text of a non-standard bounce. Each email has one recipient, so a failure
reported with our send id is that send's.

=====================================================  ============================================
what the bounce says                                   stored as
=====================================================  ============================================
failed for good, status 5.1.x or 5.2.x (not 5.2.2),    ``bounced``, hard: the address is suppressed
or a permanent failure with no status code
failed, any other status (a full mailbox, a policy or  ``bounced``, soft: counted; suppressed after
content block, 4.x.x after the relay gave up)          :data:`engagement.process.SOFT_BOUNCE_LIMIT`
delayed (the relay is still trying)                    ``deferred``: recorded only
=====================================================  ============================================
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime

from flufl.bounce import all_failures
from sqlalchemy import Connection

from campaigns.ledger_reads import email_key_of
from engagement import ingest
from engagement.events import HARD, SOFT, Event, Kind

PROVIDER = "smtp"
SEND_ID_HEADER = "X-Clinicmail-Send-Id"
_SEND_ID = re.compile(rb"^X-Clinicmail-Send-Id:[ \t]*([0-9a-f]{32})\b", re.IGNORECASE | re.M)
_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")


@dataclass(frozen=True)
class Bounce:
    """What one bounce message says about one of our sends."""

    send_id: str
    permanent: bool  # the relay gave up (False: it is still trying)
    status: str | None  # the RFC 3463 code of the DSN, when it gives one
    message_key: str  # the bounce's own Message-ID (or a digest): reading it twice stores once
    occurred_at: datetime | None

    @property
    def bounce_class(self) -> str:
        if not self.permanent:
            return SOFT
        if self.status is None:
            return HARD
        match = _STATUS.match(self.status)
        if match is None or match.group(1) != "5":
            return SOFT
        subject, detail = int(match.group(2)), int(match.group(3))
        # x.1 addressing (no such user, bad domain), x.2 mailbox (disabled) — but 5.2.2 is a full
        # mailbox, which can empty again.
        return HARD if subject == 1 or (subject == 2 and detail != 2) else SOFT


def parse(raw: bytes) -> Bounce | None:
    """The bounce of one of our sends in ``raw``, or None (not a bounce, or not of our mail)."""
    msg = email.message_from_bytes(raw)  # compat32 Message objects, which flufl.bounce walks
    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return None
    send_id = _send_id(raw, msg)
    if send_id is None:
        return None
    return Bounce(
        send_id=send_id,
        permanent=bool(permanent),
        status=_dsn_status(msg),
        message_key=_message_key(msg, raw),
        occurred_at=_date(msg),
    )


def to_event(bounce: Bounce, email_key: str) -> Event:
    """The stored event for ``bounce`` of a send to ``email_key``: the same shape as SendGrid's
    (``email``, ``send_id``, ``event``, ``type``), so one applier handles both."""
    kind = Kind.BOUNCED if bounce.permanent else Kind.DEFERRED
    name = "bounce" if bounce.permanent else "deferred"
    bounce_class = bounce.bounce_class if bounce.permanent else None
    raw: dict[str, object] = {
        "event": name,
        "email": email_key,
        "send_id": bounce.send_id,
        "source": "bounce mailbox",
    }
    if bounce_class is not None:
        raw["type"] = "bounce" if bounce_class == HARD else "blocked"
    if bounce.status:
        raw["status"] = bounce.status
    ts = int(bounce.occurred_at.timestamp()) if bounce.occurred_at else None
    return Event(
        provider=PROVIDER,
        kind=kind,
        event=name,
        sg_event_id=None,
        sg_message_id=bounce.message_key,
        email_key=email_key,
        send_id=bounce.send_id,
        url=None,
        occurred_at=bounce.occurred_at,
        timestamp=ts,
        bounce_class=bounce_class,
        # Codes only: a relay's diagnostic text can quote addresses and the returned message.
        reason=f"{name} {bounce.status or '(no status code)'}",
        raw=raw,
    )


def record(conn: Connection, bounce: Bounce, now: datetime) -> bool:
    """Store ``bounce`` as an event of its send, to be applied like any provider event; False
    when no send of a person still held has that id (a staff alert, an erased person)."""
    email_key = email_key_of(conn, bounce.send_id)
    if email_key is None:
        return False
    ingest.store(conn, [to_event(bounce, email_key)], now)
    return True


def _send_id(raw: bytes, msg: Message) -> str | None:
    """The send id from the returned message's header. The bounce's own top-level headers are
    skipped: the returned original is in the body (a ``message/rfc822`` part, a
    ``text/rfc822-headers`` part, or quoted text), and a send id is never taken from anywhere
    else."""
    _, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        _, sep, body = raw.partition(b"\n\n")
    ids = {m.group(1).decode("ascii").lower() for m in _SEND_ID.finditer(body)}
    if not ids:  # a returned part in base64 or quoted-printable
        for part in msg.walk():
            decoded = None if part is msg else part.get_payload(decode=True)
            if isinstance(decoded, bytes):
                ids |= {m.group(1).decode("ascii").lower() for m in _SEND_ID.finditer(decoded)}
    # One returned message has one send id; more than one is not a bounce of ours to trust.
    return ids.pop() if len(ids) == 1 else None


def _dsn_status(msg: Message) -> str | None:
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks:
            if isinstance(block, Message) and block.get("status"):
                match = _STATUS.match(str(block.get("status")))
                if match:
                    return ".".join(match.groups())
    return None


def _message_key(msg: Message, raw: bytes) -> str:
    message_id = str(msg.get("message-id") or "").strip()
    if message_id and len(message_id) <= 200:
        return "bounce:" + message_id
    return "bounce:sha256:" + hashlib.sha256(raw).hexdigest()


def _date(msg: Message) -> datetime | None:
    try:
        value = parsedate_to_datetime(str(msg.get("date") or ""))
    except (TypeError, ValueError, IndexError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


__all__ = ["PROVIDER", "SEND_ID_HEADER", "Bounce", "parse", "record", "to_event"]
