"""The normalized tracking-event model and the table mapping SendGrid's event names onto it.

Like django-anymail's ``AnymailTrackingEvent``: every provider event becomes one :class:`Event`
with a small, closed set of kinds, and the raw payload is always kept beside it so nothing the
provider said is lost. Only this module knows SendGrid's vocabulary.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from subscribers.addresses import address_hash


class Kind(StrEnum):
    PROCESSED = "processed"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    OPENED = "opened"
    CLICKED = "clicked"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    RESUBSCRIBED = "resubscribed"
    UNKNOWN = "unknown"
    # Kept for the record but never applied: the event cannot be stored as sent (see
    # :func:`from_sendgrid`); ``reason`` says why.
    REJECTED = "rejected"


HARD = "hard"
SOFT = "soft"

# SendGrid Event Webhook "event" → our kind.
SENDGRID_KINDS: dict[str, Kind] = {
    "processed": Kind.PROCESSED,
    "delivered": Kind.DELIVERED,
    "deferred": Kind.DEFERRED,
    "bounce": Kind.BOUNCED,
    "dropped": Kind.DROPPED,
    "open": Kind.OPENED,
    "click": Kind.CLICKED,
    "spamreport": Kind.COMPLAINED,
    "unsubscribe": Kind.UNSUBSCRIBED,
    "group_unsubscribe": Kind.UNSUBSCRIBED,
    "group_resubscribe": Kind.RESUBSCRIBED,
}

# A bounce event's "type": "bounce" is a hard bounce, "blocked" a soft one. A bounce without a
# type is treated as hard (the contract: a bounce suppresses the address).
SENDGRID_BOUNCE_CLASS: dict[str, str] = {"bounce": HARD, "blocked": SOFT}


@dataclass(frozen=True)
class Event:
    """One provider event, normalized. ``raw`` is the event exactly as the provider sent it."""

    provider: str
    kind: Kind
    event: str
    sg_event_id: str | None
    sg_message_id: str | None
    email_key: str | None
    send_id: str | None
    url: str | None
    occurred_at: datetime | None
    timestamp: int | None
    machine: bool = False
    bounce_class: str | None = None
    reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    rejected_key: str | None = None  # set on REJECTED events: a digest of the whole payload

    @property
    def email_hash(self) -> str | None:
        return address_hash(self.email_key) if self.email_key else None

    @property
    def natural_key(self) -> str:
        """Unique per event. With an ``sg_event_id`` it is derived from that id alone, so two
        events with different ids are never merged; without one, from what the event says (so a
        payload lacking ids that is posted twice is still stored once)."""
        if self.rejected_key:
            parts: tuple[str, ...] = (self.provider, "rejected", self.rejected_key)
            return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
        if self.sg_event_id:
            parts = (self.provider, "sg_event_id", self.sg_event_id)
            return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
        parts = (
            self.provider,
            self.sg_message_id or "",
            self.event,
            "" if self.timestamp is None else str(self.timestamp),
            self.url or "",
            self.email_key or "",
            self.send_id or "",
        )
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _text(value: Any, limit: int) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] or None


def _email_key(value: Any) -> str | None:
    # SendGrid echoes the address we sent to, which was already normalized at import: lower-casing
    # gives our comparison key without a validator call per event on the hot path.
    text = _text(value, 320)
    return text.lower() if text else None


def _timestamp(value: Any) -> tuple[int | None, datetime | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, None
    try:
        ts = int(float(value))
        return ts, datetime.fromtimestamp(ts, UTC)
    except (ValueError, OverflowError, OSError):
        return None, None


# Apple Mail Privacy Protection fetches every image through Apple's proxies soon after delivery,
# whether or not anyone reads the email. SendGrid flags most of these (``sg_machine_open``); the
# rest are recognised the way the proxies present themselves: the bare user agent
# "Mozilla/5.0" with nothing after it (no real mail client sends that), or an address in Apple's
# own 17.0.0.0/8 network. A human reading in Apple Mail with MPP on is indistinguishable from
# the prefetch, so those opens are machine opens too: only clicks prove a person there.
APPLE_PROXY_AGENTS = frozenset({"mozilla/5.0"})
APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")


def is_machine_open(raw: dict[str, Any]) -> bool:
    """Is this SendGrid ``open`` event a privacy proxy's prefetch rather than a person?"""
    if raw.get("sg_machine_open") is True:
        return True
    agent = raw.get("useragent")
    if isinstance(agent, str) and agent.strip().lower() in APPLE_PROXY_AGENTS:
        return True
    ip = raw.get("ip")
    if isinstance(ip, str):
        try:
            return ipaddress.ip_address(ip.strip()) in APPLE_NETWORK
        except ValueError:
            return False
    return False


def _nul_path(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides in a decoded JSON value (a key or a string), if anywhere."""
    if isinstance(value, str):
        return path or "event" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here.replace("\x00", "\\u0000")
            found = _nul_path(item, here)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_path(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _rejected(raw: dict[str, Any], why: str) -> Event:
    """An event kept for the record only. No id or send is taken from it (they may be the bad
    part), and it is deduplicated on its whole payload. The address's hash is kept so erasing
    that person erases this record too."""
    digest = hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS))
    name = (_text(raw.get("event"), 32) or "unknown").replace("\x00", "")
    email = raw.get("email")
    return Event(
        provider="sendgrid",
        kind=Kind.REJECTED,
        event=name or "unknown",
        sg_event_id=None,
        sg_message_id=None,
        email_key=_email_key(email.replace("\x00", "")) if isinstance(email, str) else None,
        send_id=None,
        url=None,
        occurred_at=None,
        timestamp=None,
        reason=why[:500],
        raw=raw,
        rejected_key=digest.hexdigest(),
    )


def from_sendgrid(raw: dict[str, Any], *, nul_free: bool = False) -> Event:
    """Normalize one element of a SendGrid Event Webhook batch.

    ``custom_args`` arrive as top-level keys of the event (SendGrid flattens them), so the
    ledger's ``send_id`` is ``raw["send_id"]``. An event carrying a NUL character anywhere
    (no database text column can hold one, and no genuine event has one) becomes a
    :attr:`Kind.REJECTED` record naming the field, so the rest of its batch is still stored.
    ``nul_free``: the caller has already proved there is none (the webhook checks the whole
    body once), so the walk through every key and value is skipped.
    """
    bad = None if nul_free else _nul_path(raw)
    if bad is not None:
        return _rejected(raw, f"rejected: a NUL character in {bad}")
    name = _text(raw.get("event"), 32) or "unknown"
    kind = SENDGRID_KINDS.get(name, Kind.UNKNOWN)
    ts, at = _timestamp(raw.get("timestamp"))
    bounce_class = None
    reason = None
    if kind is Kind.BOUNCED:
        bounce_class = SENDGRID_BOUNCE_CLASS.get(_text(raw.get("type"), 16) or "bounce", HARD)
        reason = _text(raw.get("reason"), 2000)
    elif kind is Kind.DROPPED:
        reason = _text(raw.get("reason"), 2000)
    machine = kind is Kind.OPENED and is_machine_open(raw)
    return Event(
        provider="sendgrid",
        kind=kind,
        event=name,
        sg_event_id=_text(raw.get("sg_event_id"), 128),
        sg_message_id=_text(raw.get("sg_message_id"), 255),
        email_key=_email_key(raw.get("email")),
        send_id=_text(raw.get("send_id"), 64),
        url=_text(raw.get("url"), 8000) if kind is Kind.CLICKED else None,
        occurred_at=at,
        timestamp=ts,
        machine=machine,
        bounce_class=bounce_class,
        reason=reason,
        raw=raw,
    )
