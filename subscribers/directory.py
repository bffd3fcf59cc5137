"""Finding people for staff: by address or first name, filtered by status and symptom group,
or only those flagged for review (arm or neck and leg symptoms together).

Only the console calls this; it returns plain rows, newest first, a page at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, or_, select

from subscribers.segments import ARM_AND_LEG, compile_rule
from subscribers.store import CONFIRMED, UNCONFIRMED, UNSUBSCRIBED, symptoms_of
from subscribers.symptoms import GROUP_IDS, arm_and_leg, codes_in_group
from subscribers.tables import subscriber_symptoms, subscribers

STATUSES = (CONFIRMED, UNCONFIRMED, UNSUBSCRIBED)
PAGE = 50


@dataclass(frozen=True)
class Found:
    public_id: str
    email: str
    first_name: str | None
    status: str
    red_flag: bool
    symptoms: frozenset[str]
    created_at: datetime

    @property
    def arm_and_leg(self) -> bool:
        return arm_and_leg(self.symptoms)


@dataclass(frozen=True)
class Query:
    text: str = ""
    status: str = ""
    group: str = ""
    review: bool = False  # only people flagged for review (arm or neck and leg symptoms)

    def problems(self) -> list[str]:
        out = []
        if self.status and self.status not in STATUSES:
            out.append(f"Unknown status {self.status!r}.")
        if self.group and self.group not in GROUP_IDS:
            out.append(f"Unknown symptom group {self.group!r}.")
        if len(self.text) > 320:
            out.append("The search text is too long (at most 320 characters).")
        return out


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(conn: Connection, query: Query, *, limit: int = PAGE) -> tuple[list[Found], int]:
    """People matching ``query`` (newest first, at most ``limit``) and how many match in all.

    The text matches anywhere in the address (case-insensitively) or the first name.
    """
    s = subscribers.c
    where = []
    text = query.text.strip()
    if text:
        pattern = _like(text.lower())
        where.append(
            or_(
                s.email_key.like(pattern, escape="\\"),
                func.lower(s.first_name).like(pattern, escape="\\"),
            )
        )
    if query.status:
        where.append(s.status == query.status)
    if query.group:
        where.append(
            s.id.in_(
                select(subscriber_symptoms.c.subscriber_id).where(
                    subscriber_symptoms.c.code.in_(sorted(codes_in_group(query.group)))
                )
            )
        )
    if query.review:
        where.append(compile_rule(ARM_AND_LEG))
    total = int(
        conn.execute(select(func.count()).select_from(subscribers).where(*where)).scalar_one()
    )
    rows = conn.execute(
        select(s.id, s.public_id, s.email, s.first_name, s.status, s.red_flag, s.created_at)
        .where(*where)
        .order_by(s.created_at.desc(), s.id.desc())
        .limit(limit)
    ).all()
    codes = symptoms_of(conn, [r.id for r in rows])
    found = [
        Found(
            public_id=r.public_id,
            email=r.email,
            first_name=r.first_name,
            status=r.status,
            red_flag=bool(r.red_flag),
            symptoms=codes.get(r.id, frozenset()),
            created_at=r.created_at,
        )
        for r in rows
    ]
    return found, total


def flagged_for_review(conn: Connection) -> int:
    """Confirmed people with arm (or neck) and leg symptoms together: the dashboard's count."""
    s = subscribers.c
    return int(
        conn.execute(
            select(func.count())
            .select_from(subscribers)
            .where(s.status == CONFIRMED, compile_rule(ARM_AND_LEG))
        ).scalar_one()
    )
