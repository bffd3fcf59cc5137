"""How a console request takes part in the review workflow (:mod:`campaigns.review`): the
signed-in staff member as the workflow's actor, and the audit writer each step uses on the
step's own connection."""

from __future__ import annotations

from datetime import datetime

from campaigns.review import Actor, Audit
from staff import audit
from staff.sessions import Session
from storage import utcnow


def actor(session: Session) -> Actor:
    return Actor(session.user.id, session.user.email, session.user.role)


def auditor(session: Session, now: datetime | None = None) -> Audit:
    """Writes the step's audit entry as the signed-in staff member."""
    return audit.writer(session.user, now or utcnow())
