"""Newsletters written in the console: a one-off broadcast's draft, its clinical review, and
the link to the broadcast once scheduled.

A newsletter moves through::

    draft → in_review → approved (immutable) → scheduled → cancelled
      ↑________|  (changes requested)

Only drafts change. Only a clinician approves, never a newsletter they edited (the same rule
as campaign content, :mod:`campaigns.versions`). Scheduling hands the approved text to
:mod:`campaigns.broadcasts` (through the scheduler, like ``clinicmail campaigns broadcast``);
from then on progress and cancelling are the broadcast's.

The audience is kept as the segment builder's choices (symptom codes, symptom groups,
engagement) and turned into a segment rule by :func:`rule_data`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import JSON, Boolean, Column, Connection, String, Table, Text, insert, select

from campaigns.tables import ReviewedContent, review_columns, review_fields
from core.errors import InputError
from core.headers import PREHEADER_MAX, SUBJECT_MAX, header_problem
from storage.schema import UTCDateTime, metadata
from storage.sql import move_state

DRAFT, IN_REVIEW, APPROVED, SCHEDULED, CANCELLED = (
    "draft",
    "in_review",
    "approved",
    "scheduled",
    "cancelled",
)
CHECKINS = ("better", "same", "worse")

newsletters = Table(
    "newsletters",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("slug", String(54), nullable=False, unique=True),  # becomes "broadcast.<slug>"
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("audience", JSON, nullable=False),  # the segment builder's choices
    Column("local_at", String(16)),  # wall time "YYYY-MM-DDTHH:MM", read in each person's zone
    # Goes at its time even to people emailed in the last seven days (a closure, a changed
    # number); it still counts toward the weekly cap. See campaigns.cadence.
    Column("time_sensitive", Boolean, nullable=False, default=False, server_default="0"),
    *review_columns(),
    Column("scheduled_at", UTCDateTime()),
    Column("cancelled_at", UTCDateTime()),
)


class NewsletterError(InputError, ValueError):
    """A change the workflow does not allow; the message says why in plain words."""


@dataclass(frozen=True)
class Audience:
    """Who gets it: people with any of ``codes``, in any of ``groups``, and matching the
    engagement choices. Nothing chosen means every confirmed subscriber."""

    codes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    opened: str = ""  # a campaign id (or "campaign/step"): opened it
    clicked: str = ""  # likewise: clicked in it
    checkin: str = ""  # latest check-in answer

    def as_dict(self) -> dict[str, Any]:
        return {
            "codes": list(self.codes),
            "groups": list(self.groups),
            "opened": self.opened,
            "clicked": self.clicked,
            "checkin": self.checkin,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        return cls(
            codes=tuple(data.get("codes", ())),
            groups=tuple(data.get("groups", ())),
            opened=str(data.get("opened", "")),
            clicked=str(data.get("clicked", "")),
            checkin=str(data.get("checkin", "")),
        )


def rule_data(audience: Audience) -> dict[str, Any]:
    """The segment rule (as data, the form ``campaigns broadcast --segment`` takes)."""
    parts: list[dict[str, Any]] = []
    if audience.codes:
        parts.append({"has_any": sorted(audience.codes)})
    if audience.groups:
        parts.append({"any": [{"in_group": g} for g in sorted(audience.groups)]})
    if audience.opened:
        parts.append({"opened": audience.opened})
    if audience.clicked:
        parts.append({"clicked": audience.clicked})
    if audience.checkin:
        parts.append({"checkin": audience.checkin})
    return {"all": parts}


@dataclass(frozen=True)
class Fields:
    """What staff write in a newsletter's editor (the slug aside: it is fixed at creation)."""

    subject: str
    preheader: str
    body: str
    audience: Audience
    local_at: str | None
    time_sensitive: bool = False

    def check(self) -> None:
        """Refuse a subject or preheader that cannot be an email header (core.headers), naming
        the field: here, when it is written, never first when it is sent."""
        for name, value, limit in (
            ("subject", self.subject, SUBJECT_MAX),
            ("preheader", self.preheader, PREHEADER_MAX),
        ):
            problem = header_problem(value, max_length=limit)
            if problem:
                raise NewsletterError(f"the {name} {problem}")

    def values(self) -> dict[str, Any]:
        """As columns of :data:`newsletters`."""
        return {
            "subject": self.subject,
            "preheader": self.preheader,
            "body": self.body,
            "audience": self.audience.as_dict(),
            "local_at": self.local_at,
            "time_sensitive": self.time_sensitive,
        }


def markdown(subject: str, preheader: str, body: str) -> str:
    """The newsletter as the Markdown file ``campaigns broadcast`` reads."""
    front = yaml.safe_dump(
        {"subject": subject, "preheader": preheader}, allow_unicode=True, sort_keys=False
    )
    return f"---\n{front}---\n{body.strip()}\n"


@dataclass(frozen=True)
class Newsletter(ReviewedContent):
    slug: str
    subject: str
    preheader: str
    body: str
    audience: Audience
    local_at: str | None
    scheduled_at: datetime | None
    time_sensitive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def editable(self) -> bool:
        return self.state == DRAFT

    @property
    def fields(self) -> Fields:
        return Fields(
            self.subject,
            self.preheader,
            self.body,
            self.audience,
            self.local_at,
            self.time_sensitive,
        )

    @property
    def file_name(self) -> str:
        return f"{self.slug}.md"

    @property
    def sources(self) -> dict[str, str]:
        return {self.file_name: markdown(self.subject, self.preheader, self.body)}


def _newsletter(row: Any) -> Newsletter:
    r = row._mapping
    audience = r["audience"]
    if isinstance(audience, str):  # some drivers hand JSON back as text
        audience = json.loads(audience)
    return Newsletter(
        slug=r["slug"],
        subject=r["subject"],
        preheader=r["preheader"],
        body=r["body"],
        audience=Audience.from_dict(audience),
        local_at=r["local_at"],
        **review_fields(r),
        scheduled_at=r["scheduled_at"],
        time_sensitive=bool(r["time_sensitive"]),
    )


def get(conn: Connection, newsletter_id: str) -> Newsletter | None:
    if len(newsletter_id) > 32:
        return None
    row = conn.execute(select(newsletters).where(newsletters.c.id == newsletter_id)).first()
    return _newsletter(row) if row else None


def all_newsletters(conn: Connection) -> list[Newsletter]:
    rows = conn.execute(select(newsletters).order_by(newsletters.c.created_at.desc()))
    return [_newsletter(r) for r in rows]


def slug_taken(conn: Connection, slug: str) -> bool:
    return (
        conn.execute(select(newsletters.c.id).where(newsletters.c.slug == slug)).first() is not None
    )


def create(
    conn: Connection,
    *,
    slug: str,
    fields: Fields,
    editor_id: int,
    editor: str,
    now: datetime,
) -> Newsletter:
    fields.check()
    nid = secrets.token_hex(16)
    conn.execute(
        insert(newsletters).values(
            id=nid,
            slug=slug,
            **fields.values(),
            state=DRAFT,
            editor_ids=[editor_id],
            created_by=editor,
            created_at=now,
            updated_at=now,
        )
    )
    found = get(conn, nid)
    assert found is not None
    return found


def _move(
    conn: Connection, n: Newsletter, frm: tuple[str, ...], to: str, now: datetime, **values: Any
) -> Newsletter:
    move_state(conn, newsletters, "newsletter", n, frm, to, now, NewsletterError, **values)
    found = get(conn, n.id)
    assert found is not None
    return found


def save(
    conn: Connection,
    n: Newsletter,
    *,
    fields: Fields,
    editor_id: int,
    now: datetime,
) -> Newsletter:
    """Change a draft (approved text never changes)."""
    if not n.editable:
        raise NewsletterError("only a draft can be changed")
    fields.check()
    return _move(
        conn,
        n,
        (DRAFT,),
        DRAFT,
        now,
        **fields.values(),
        editor_ids=sorted({*n.editor_ids, editor_id}),
    )


def submit(conn: Connection, n: Newsletter, now: datetime) -> Newsletter:
    """Draft → in review (the caller checked the content first)."""
    return _move(conn, n, (DRAFT,), IN_REVIEW, now, submitted_at=now)


def _reviewer_may(n: Newsletter, reviewer_id: int, role: str) -> None:
    if role != "clinician":
        raise NewsletterError("only a clinician reviews content")
    if reviewer_id in n.editor_ids:
        raise NewsletterError("you edited this newsletter, so another clinician must review it")


def approve(
    conn: Connection,
    n: Newsletter,
    reviewer_id: int,
    reviewer: str,
    role: str,
    note: str,
    now: datetime,
) -> Newsletter:
    _reviewer_may(n, reviewer_id, role)
    return _move(
        conn,
        n,
        (IN_REVIEW,),
        APPROVED,
        now,
        reviewed_by=reviewer,
        reviewed_by_id=reviewer_id,
        reviewed_at=now,
        review_note=note.strip() or None,
    )


def request_changes(
    conn: Connection, n: Newsletter, reviewer_id: int, role: str, note: str, now: datetime
) -> Newsletter:
    if role != "clinician":
        raise NewsletterError("only a clinician reviews content")
    return _move(conn, n, (IN_REVIEW,), DRAFT, now, review_note=note.strip() or None)


def mark_scheduled(conn: Connection, n: Newsletter, now: datetime) -> Newsletter:
    return _move(conn, n, (APPROVED,), SCHEDULED, now, scheduled_at=now)


def mark_cancelled(conn: Connection, n: Newsletter, now: datetime) -> Newsletter:
    return _move(conn, n, (DRAFT, IN_REVIEW, APPROVED, SCHEDULED), CANCELLED, now, cancelled_at=now)
