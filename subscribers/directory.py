"""Finding people for staff: by address or first name, filtered by status and symptom group,
or only those flagged for review (arm or neck and leg symptoms together).

Only the console calls this; it returns plain rows, newest first, a page at a time. Paging is
keyset paging on the primary key (newest added first): the next page starts after the last
person shown, named by their public id, so a page costs one index range scan however deep it is.

A text search (an address or a name is personal data) never goes in a URL: :func:`save_search`
keeps the text server-side in the ``kv`` table under a random, short-lived search id
(:data:`SEARCH_TTL`), and the URL carries only that id. Expired searches are deleted whenever a
new one is saved, so a typed address outlives its search by at most that long.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, or_, select

from storage.schema import kv
from subscribers.segments import ARM_AND_LEG, compile_rule
from subscribers.store import CONFIRMED, UNCONFIRMED, UNSUBSCRIBED, symptoms_of
from subscribers.symptoms import GROUP_IDS, arm_and_leg, codes_in_group
from subscribers.tables import subscriber_symptoms, subscribers

STATUSES = (CONFIRMED, UNCONFIRMED, UNSUBSCRIBED)
PAGE = 50
PAGE_SIZES = (50, 200, 500)
SEARCH_TTL = timedelta(minutes=30)
SEARCH_PREFIX = "people-search:"


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


def save_search(conn: Connection, text: str, now: datetime) -> str:
    """Keep ``text`` server-side and return the opaque search id that stands for it in URLs."""
    stale = [
        row.key
        for row in conn.execute(
            select(kv.c.key, kv.c.value).where(kv.c.key.like(f"{SEARCH_PREFIX}%"))
        )
        if datetime.fromisoformat(json.loads(row.value)["expires"]) <= now
    ]
    if stale:
        conn.execute(delete(kv).where(kv.c.key.in_(stale)))
    search_id = secrets.token_urlsafe(16)
    value = json.dumps({"text": text, "expires": (now + SEARCH_TTL).isoformat()})
    conn.execute(insert(kv).values(key=SEARCH_PREFIX + search_id, value=value))
    return search_id


def load_search(conn: Connection, search_id: str, now: datetime) -> str | None:
    """The text saved under ``search_id``; None when unknown or expired."""
    if not search_id or len(search_id) > 43:
        return None
    raw = conn.execute(select(kv.c.value).where(kv.c.key == SEARCH_PREFIX + search_id)).scalar()
    if raw is None:
        return None
    data = json.loads(raw)
    if datetime.fromisoformat(data["expires"]) <= now:
        return None
    return str(data["text"])


@dataclass(frozen=True)
class Page:
    found: list[Found]
    total: int
    next_after: str | None  # the public id the next page starts after; None on the last page


def search(
    conn: Connection, query: Query, *, limit: int = PAGE, after: str = ""
) -> tuple[list[Found], int]:
    """People matching ``query`` (newest first, at most ``limit``) and how many match in all."""
    got = page_of(conn, query, limit=limit, after=after)
    return got.found, got.total


def page_of(conn: Connection, query: Query, *, limit: int = PAGE, after: str = "") -> Page:
    """One page of people matching ``query``, newest added first, starting after the person
    whose public id is ``after`` (the first page when empty or unknown).

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
    if after:
        start = conn.execute(select(s.id).where(s.public_id == after)).scalar()
        if start is not None:
            where.append(s.id < start)
    rows = conn.execute(
        select(s.id, s.public_id, s.email, s.first_name, s.status, s.red_flag, s.created_at)
        .where(*where)
        .order_by(s.id.desc())
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
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
    return Page(found, total, rows[-1].public_id if more and rows else None)


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
