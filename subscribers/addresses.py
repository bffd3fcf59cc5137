"""Email address validation, normalisation and the bare one-way hash stored events carry.

The suppression list uses a *keyed* hash instead (``storage.keys.suppression_hash``)."""

from __future__ import annotations

import hashlib
import re

import email_validator
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

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
    email = plain(text)
    if email is not None:
        return email, email.lower()
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"invalid email: {exc}") from None
    email = result.normalized
    return email, email.lower()


# The common case, plain ASCII: a dot-atom local part (RFC 5322 atext) and a host name whose
# labels are letters, digits and inner hyphens, the last one ending in a letter. Written with
# explicit ranges and no IGNORECASE: under Unicode case-insensitive matching [a-z] would also
# match the Kelvin sign and the long s.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]"
_PLAIN = re.compile(rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@((?:{_LABEL}\.)+{_TLD})")
# RFC 2142 role names (info@, sales@ …), which email-validator lower-cases: left to it.
_ROLE_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def plain(text: str) -> str | None:
    """The normalised form of a plain-ASCII address, or ``None`` to ask email-validator.

    email-validator spends most of its ~150 µs on Unicode and IDNA work that a plain ASCII
    address never needs, and an import calls it once per row. This accepts only addresses that
    email-validator (as :func:`normalize` calls it) certainly accepts, and returns exactly its
    ``normalized`` form: the local part as given, the domain lower-cased. Everything else (any
    non-ASCII, quotes, ``--`` as in Punycode ``xn--`` labels, role names, special-use domains,
    anything over the length limit) returns ``None`` and goes to email-validator, whose answer
    and message stand. ``tests/test_addresses_fast.py`` checks the agreement property-based.
    """
    if len(text) > 254 or not text.isascii():
        return None
    match = _PLAIN.fullmatch(text)
    if match is None:
        return None
    local, domain = match.groups()
    domain = domain.lower()
    if "--" in domain or local.lower() in _ROLE_NAMES:
        return None
    for special in email_validator.SPECIAL_USE_DOMAIN_NAMES:  # read now: it can be changed
        if domain == special or domain.endswith("." + special):
            return None
    return f"{local}@{domain}"


def address_hash(key: str) -> str:
    """A stable SHA-256 of a lower-cased address: how stored provider events are found again
    for erasure and counting (their payloads hold the address anyway). Suppression-list entries
    made before the keyed hash used it too."""
    return hashlib.sha256(key.strip().lower().encode("utf-8")).hexdigest()
