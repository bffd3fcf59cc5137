"""The three staff roles, ordered: each can do everything the one before it can.

``marketing`` writes and schedules content; ``clinician`` also approves it; ``ops`` also
manages accounts, delivery and list health. Approving content is a clinical act, so it is the
one right that is *not* inherited upward: only a clinician approves (the rule lives in the
review workflow, ``campaigns.review``).
"""

from __future__ import annotations

from typing import Literal

Role = Literal["marketing", "clinician", "ops"]
MARKETING: Role = "marketing"
CLINICIAN: Role = "clinician"
OPS: Role = "ops"
ROLES: tuple[Role, ...] = (MARKETING, CLINICIAN, OPS)


def at_least(role: str, needed: Role) -> bool:
    """True when ``role`` ranks at or above ``needed`` (unknown roles rank below everything)."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)
