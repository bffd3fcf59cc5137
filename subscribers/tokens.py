"""Signed, opaque tokens for links in emails (itsdangerous, one salt per purpose): the one
signer of every link we send.

Two kinds of link, each a format that links in emails already sent keep:

- **payload tokens** (:meth:`Tokens.make`, :meth:`Tokens.read_link`) for the unsubscribe,
  preference, confirmation and "keep" links: an itsdangerous URL-safe serialized value;
- **signed ids** (:meth:`Tokens.signature`, :meth:`Tokens.token`) for tracked links, the open
  pixel and check-in links: an HMAC-SHA256 signature over an opaque id already in the URL.

A payload token carries only the subscriber's random ``public_id`` (never an address or a symptom) and,
in the unsubscribe and preference links of an email, that email's opaque ``send_id``, so an
unsubscribe is counted against the campaign and step whose link was used. Tokens made before
the ``send_id`` was added (a bare ``public_id``) still verify.
Key rotation: pass several keys, newest last; tokens signed with any of them still verify.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    Signer,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_encode, want_bytes
from itsdangerous.serializer import Serializer

# "keep": the re-engagement email's "keep sending me emails" link (engagement.sunset).
TokenPurpose = Literal["unsubscribe", "preferences", "confirm", "keep"]
# Own open and click tracking and one-click check-ins (engagement.tracking).
LinkPurpose = Literal["open", "click", "checkin"]
Purpose = TokenPurpose | LinkPurpose
LINK_PURPOSES: frozenset[str] = frozenset(("open", "click", "checkin"))
# Unsubscribe and preference links must work for the life of an email (RFC 8058 wants ≥ 60 days);
# they never expire. A confirmation link is only good for a week.
CONFIRM_MAX_AGE = 7 * 24 * 3600


# Random ids (hex, URL-safe base64): characters JSON writes as they are.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]+")
_DERIVED: dict[tuple[Any, ...], bytes] = {}
_MACS: dict[tuple[bytes, Any], hmac.HMAC] = {}


class _Signer(Signer):
    """itsdangerous re-derives the HMAC key from the secret and salt on every signature (several
    per email); the result depends only on those, so it is derived once per process."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else secret_key
        key = (type(self), secret, self.salt, self.key_derivation, self.digest_method)
        if key not in _DERIVED:
            _DERIVED[key] = super().derive_key(secret)
        return _DERIVED[key]

    def get_signature(self, value: str | bytes) -> bytes:
        # An HMAC keyed once and copied per token (the stock path re-keys for every one).
        key = self.derive_key()
        template = _MACS.get((key, self.digest_method))
        if template is None:
            template = _MACS[(key, self.digest_method)] = hmac.new(
                key, digestmod=self.digest_method
            )
        mac = template.copy()
        mac.update(want_bytes(value))
        return base64_encode(mac.digest())


class _TimedSigner(_Signer, TimestampSigner):
    """The same, for the confirmation link's timestamped tokens."""


class _Plain(URLSafeSerializer):
    """Never tries zlib: a token holds a 32-character random id, which does not compress, so
    the attempt is wasted work (the stock serializer reads these tokens, and these read its)."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class _Timed(URLSafeTimedSerializer):
    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class Tokens:
    """Signs and reads every link token; several keys verify, the newest (last) signs."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = list(keys)
        # One serializer or signer per purpose, made once (building one per link showed in
        # profiles).
        self._plains: dict[str, URLSafeSerializer] = {}
        self._payload_signers: dict[str, Signer] = {}
        self._timeds: dict[str, URLSafeTimedSerializer] = {}
        self._signers = {
            purpose: _Signer(self._keys, salt=f"clinicmail.{purpose}", digest_method=hashlib.sha256)
            for purpose in LINK_PURPOSES
        }

    def _plain(self, purpose: TokenPurpose) -> URLSafeSerializer:
        if purpose not in self._plains:
            self._plains[purpose] = _Plain(self._keys, salt=f"clinicmail.{purpose}", signer=_Signer)
        return self._plains[purpose]

    def _timed(self, purpose: TokenPurpose) -> URLSafeTimedSerializer:
        if purpose not in self._timeds:
            self._timeds[purpose] = _Timed(
                self._keys, salt=f"clinicmail.{purpose}", signer=_TimedSigner
            )
        return self._timeds[purpose]

    # -- payload tokens ----------------------------------------------------------------------
    def make(self, purpose: TokenPurpose, public_id: str, send_id: str | None = None) -> str:
        """``send_id``: the email this link is in (unsubscribe and preference links)."""
        if purpose == "confirm":
            return str(self._timed(purpose).dumps(public_id))
        payload: str | list[str] = [public_id, send_id] if send_id else public_id
        # What ``URLSafeSerializer.dumps`` writes without zlib (see _Plain), made here with one
        # signer per purpose: the serializer builds a new signer for every token, two per email.
        signer = self._payload_signers.get(purpose)
        if signer is None:
            signer = self._payload_signers[purpose] = self._plain(purpose).make_signer()
        if send_id and _PLAIN_ID.fullmatch(public_id) and _PLAIN_ID.fullmatch(send_id):
            # the JSON of two ids that need no escaping, written directly (two links per email)
            text = f'["{public_id}","{send_id}"]'
        else:
            text = json.dumps(payload, separators=(",", ":"))
        body = base64_encode(text)
        return signer.sign(body).decode("ascii")

    def read(self, purpose: Purpose, token: str) -> str | None:
        """The ``public_id`` inside a valid payload token, or the id inside a valid
        :meth:`token`; None for a forged/expired/foreign one."""
        if purpose == "open" or purpose == "click" or purpose == "checkin":
            value, dot, signature = token.rpartition(".")
            if not dot or not value or not self.verify(purpose, value, signature):
                return None
            return value
        found = self.read_link(purpose, token)
        return found[0] if found else None

    def read_link(self, purpose: TokenPurpose, token: str) -> tuple[str, str | None] | None:
        """``(public_id, send_id)`` inside a valid token (``send_id`` None when the link names no
        email), or None for a forged/expired/foreign one."""
        try:
            if purpose == "confirm":
                value = self._timed(purpose).loads(token, max_age=CONFIRM_MAX_AGE)
            else:
                value = self._plain(purpose).loads(token)
        except (BadSignature, SignatureExpired, UnicodeDecodeError, ValueError):
            return None
        if isinstance(value, str):
            return value, None
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, str) and v for v in value)
        ):
            return value[0], value[1]
        return None

    # -- signed ids ----------------------------------------------------------------------------
    def signature(self, purpose: LinkPurpose, value: str) -> str:
        """The URL-safe signature of an id that stands in the URL beside it."""
        return self._signers[purpose].get_signature(value).decode("ascii")

    def verify(self, purpose: LinkPurpose, value: str, signature: str) -> bool:
        try:
            return self._signers[purpose].verify_signature(value, signature)
        except (BadSignature, UnicodeError, ValueError):
            return False

    def token(self, purpose: LinkPurpose, value: str) -> str:
        """``value.signature``: one path segment naming ``value`` (read it with :meth:`read`)."""
        return f"{value}.{self.signature(purpose, value)}"
