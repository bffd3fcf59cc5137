"""The consent wording shown at signup, versioned and hashed.

The consent ledger stores the version and the sha256 of the exact words a person agreed to, so the
clinic can later prove what was asked. Changing a sentence here means bumping ``VERSION``.
"""

from __future__ import annotations

import hashlib

from subscribers.store import EMAIL_PURPOSE, HEALTH_PURPOSE

VERSION = "2026-11-21"

WORDING: dict[str, str] = {
    EMAIL_PURPOSE: (
        "Yes, please send me one short educational email a week about back and neck care. "
        "I can unsubscribe at any time with one click."
    ),
    HEALTH_PURPOSE: (
        "I agree that the clinic may store the symptoms I tick, only to choose which emails "
        "suit me. They are never shared, and I can change or delete them at any time."
    ),
}


def wording_hash(purpose: str) -> str:
    return hashlib.sha256(WORDING[purpose].encode("utf-8")).hexdigest()
