"""Email address validation, normalisation and the bare one-way hash stored events carry.

The suppression list uses a *keyed* hash instead (``storage.keys.suppression_hash``)."""

from __future__ import annotations

import hashlib

from email_validator import EmailNotValidError, validate_email

from core.errors import InputError


class InvalidAddress(InputError, ValueError):
    """The text is not a usable email address; the message says why in plain words."""


def normalize(raw: str) -> tuple[str, str]:
    """Return ``(email, key)``: the address as it should be mailed and its comparison key.

    No DNS look-ups: an import of a million rows must not wait on the network.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidAddress("email is empty")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"invalid email: {exc}") from None
    email = result.normalized
    return email, email.lower()


def address_hash(key: str) -> str:
    """A stable SHA-256 of a lower-cased address: how stored provider events are found again
    for erasure and counting (their payloads hold the address anyway). Suppression-list entries
    made before the keyed hash used it too."""
    return hashlib.sha256(key.strip().lower().encode("utf-8")).hexdigest()
