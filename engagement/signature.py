"""SendGrid's signed Event Webhook: is this post genuine and fresh?

The one module of the domains that imports the ``sendgrid`` package, for its ``EventWebhook``
helper (ECDSA P-256 over ``timestamp + raw body``); it sends nothing.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any

log = logging.getLogger("clinicmail.webhooks")

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# SendGrid signs each delivery attempt (retries included) when it posts, so a genuine post is
# seconds old. Five minutes either way absorbs clock drift between two NTP-synced machines and
# slow networks (Stripe and Slack use the same bound) while a captured post can only be replayed
# for a short while, and then changes nothing: events are deduplicated by ``sg_event_id``.
MAX_SKEW_SECONDS = 300


def _der(public_key: str) -> str:
    """The base64 DER SendGrid shows, from it or from a full PEM block."""
    text = public_key.strip()
    if text.startswith("-----BEGIN"):
        text = "".join(line for line in text.splitlines() if not line.startswith("-----"))
    return text


def usable_public_key(public_key: str) -> bool:
    """Can this text verify SendGrid's signatures (checked when the settings are read)?"""
    from sendgrid.helpers.eventwebhook import EventWebhook

    try:
        EventWebhook().convert_public_key_to_ecdsa(_der(public_key))
    except Exception:  # the SDK raises what its parser raises: unusable either way
        return False
    return True


class SignatureVerifier:
    """Checks SendGrid's signed Event Webhook headers against the configured public key.

    ``public_key`` is what SendGrid shows: base64 DER (SubjectPublicKeyInfo); a full PEM block is
    accepted too. An unusable key refuses every post (fail closed) rather than accept unsigned ones.
    """

    def __init__(self, public_key: str) -> None:
        from sendgrid.helpers.eventwebhook import EventWebhook

        text = _der(public_key)
        self._webhook: Any = None
        try:
            self._webhook = EventWebhook(text)
        except (ValueError, TypeError):
            log.error("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key")

    def verify(
        self, body: bytes, signature: str | None, timestamp: str | None, *, now: float | None = None
    ) -> bool:
        return self.check(body, signature, timestamp, now=now) is None

    def check(
        self, body: bytes, signature: str | None, timestamp: str | None, *, now: float | None = None
    ) -> str | None:
        """None when the post is genuine and fresh; otherwise why it is refused. A correctly
        signed post whose timestamp is out of bounds is told so (its clock, or ours, is off):
        the signature is checked first, so a forger learns nothing from the difference."""
        if self._webhook is None or not signature or not timestamp:
            return BAD_SIGNATURE
        try:
            base64.b64decode(signature, validate=True)
            payload = body.decode("utf-8")
            genuine = bool(self._webhook.verify_signature(payload, signature, timestamp))
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
            genuine = False
        except Exception:  # the SDK may raise anything on a malformed DER signature: still a 403
            genuine = False
        if not genuine:
            return BAD_SIGNATURE
        if not _fresh(timestamp, time.time() if now is None else now):
            return STALE
        return None


BAD_SIGNATURE = "invalid or missing signature"
STALE = (
    "the signature is valid but its timestamp is more than 5 minutes from this server's "
    "clock: the post is stale, or a clock is off (check NTP on this server)"
)


def _fresh(timestamp: str, now: float) -> bool:
    """Is the signed timestamp (Unix seconds) within :data:`MAX_SKEW_SECONDS` of ``now``?"""
    text = timestamp.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return False
    return abs(int(text) - now) <= MAX_SKEW_SECONDS
