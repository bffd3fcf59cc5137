"""Newsletters written in the console: a one-off broadcast's draft, its clinical review, and
the link to the broadcast once scheduled.

A newsletter moves through::

    draft → in_review → approved (immutable) → scheduled → cancelled
      ↑________|  (changes requested)

The states, who may take each step and the audit entries are :mod:`campaigns.review`'s (the
same workflow as campaign content). Scheduling hands the approved text to
:mod:`campaigns.broadcasts` (through the scheduler, which refuses any other); from then on
progress and cancelling are the broadcast's. ``clinicmail campaigns broadcast FILE`` makes a
newsletter in review from FILE (kept as written, in ``sources``) and schedules it once a
clinician approved exactly that text.

The audience is kept as the segment builder's choices (symptom codes, symptom groups,
engagement) and turned into a segment rule by :func:`rule_data`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from campaigns import review, versions
from campaigns.loader import CAMPAIGN_VARIABLES, Problem, check_template
from campaigns.review import Actor, Audit, Kind, ReviewError
from campaigns.tables import ReviewedContent, review_columns, review_fields
from core.headers import PREHEADER_MAX, SUBJECT_MAX, header_problem
from storage.schema import UTCDateTime, metadata
from templates import Renderer
from templates.checkin import ANSWERS

DRAFT, IN_REVIEW, APPROVED, SCHEDULED, CANCELLED = (
    "draft",
    "in_review",
    "approved",
    "scheduled",
    "cancelled",
)
CHECKINS = ANSWERS  # templates.checkin: the one list
# A newsletter goes to review only when its delivery time leaves a clinician this long to read
# it: one submitted for a time about to pass would be approved too late to be sent.
REVIEW_LEAD = timedelta(hours=1)
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"  # as the editor's datetime-local field sends it

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
    # The files as written, when the newsletter came from ``clinicmail campaigns broadcast``
    # (a Markdown file and its variant files); None when written in the console's editor.
    Column("sources", JSON),
    Column("scheduled_at", UTCDateTime()),
    Column("cancelled_at", UTCDateTime()),
)


class NewsletterError(ReviewError):
    """A change the workflow does not allow; the message says why in plain words."""


class TemplateRefused(NewsletterError):
    """Not saved: the text's template cannot be rendered safely; ``problems`` are the findings
    (line, plain message) the preview shows."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        where = f"line {first.line}: " if first.line else ""
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"Not saved: {where}{first.message}{more}")
        self.problems = problems


KIND = Kind(newsletters, "newsletter", "newsletter", "newsletter", NewsletterError)


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

    def check(self, renderer: Renderer) -> None:
        """Refuse a subject or preheader that cannot be an email header (core.headers), naming
        the field, and a template that cannot be rendered safely (:class:`TemplateRefused`: the
        bounded check the preview runs): here, when it is written, never first when it is sent
        or opened."""
        for name, value, limit in (
            ("subject", self.subject, SUBJECT_MAX),
            ("preheader", self.preheader, PREHEADER_MAX),
        ):
            problem = header_problem(value, max_length=limit)
            if problem:
                raise NewsletterError(f"the {name} {problem}")
        text = markdown(self.subject, self.preheader, self.body)
        variant, front_matter, _ = versions.file_variant("newsletter.md", text)
        if variant is not None:
            found = check_template(renderer, variant, front_matter, CAMPAIGN_VARIABLES)
            if found:
                raise TemplateRefused(found)

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
    imported: dict[str, str] | None = None  # the files from `campaigns broadcast`, if any

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
        """The main Markdown file (the first of the imported files, which lists the others)."""
        if self.imported:
            return next(iter(self.imported))
        return f"{self.slug}.md"

    @property
    def sources(self) -> dict[str, str]:
        """The files that are sent: as imported, or built from the editor's fields."""
        if self.imported:
            return dict(self.imported)
        return {self.file_name: markdown(self.subject, self.preheader, self.body)}


def _newsletter(row: Any) -> Newsletter:
    r = row._mapping
    audience = _json(r["audience"])  # some drivers hand JSON back as text
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
        imported=_json(r["sources"]),
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


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
    editor_id: int | None,
    editor: str,
    now: datetime,
    renderer: Renderer,
    sources: dict[str, str] | None = None,
    audit: Audit | None = None,
) -> Newsletter:
    """A new draft (``editor_id`` None: from the command line, with its files as ``sources``);
    ``audit`` records its creation in the same transaction. Fields that fail
    :meth:`Fields.check` are refused and nothing is stored."""
    fields.check(renderer)
    nid = secrets.token_hex(16)
    conn.execute(
        insert(newsletters).values(
            id=nid,
            slug=slug,
            **fields.values(),
            state=DRAFT,
            editor_ids=[editor_id] if editor_id is not None else [],
            created_by=editor,
            created_at=now,
            updated_at=now,
            sources=sources,
        )
    )
    if audit is not None:
        audit(conn, "newsletter.create", KIND.target_type, nid, {"slug": slug})
    found = get(conn, nid)
    assert found is not None
    return found


def require(conn: Connection, newsletter_id: str) -> Newsletter:
    found = get(conn, newsletter_id)
    if found is None:
        raise NewsletterError("there is no such newsletter")
    return found


def set_sources(conn: Connection, n: Newsletter, sources: dict[str, str] | None) -> None:
    """Keep the files a draft came from (``campaigns broadcast``); only a draft changes."""
    conn.execute(
        update(newsletters)
        .where(newsletters.c.id == n.id, newsletters.c.state == DRAFT)
        .values(sources=sources)
    )


def by_slug(conn: Connection, slug: str) -> Newsletter | None:
    row = conn.execute(select(newsletters).where(newsletters.c.slug == slug)).first()
    return _newsletter(row) if row else None


def awaiting_review(conn: Connection) -> list[Newsletter]:
    """Newsletters a clinician has to look at, oldest submission first."""
    rows = conn.execute(
        select(newsletters)
        .where(newsletters.c.state == IN_REVIEW)
        .order_by(newsletters.c.submitted_at, newsletters.c.id)
    )
    return [_newsletter(r) for r in rows]


def _reload(conn: Connection, n: Newsletter) -> Newsletter:
    found = get(conn, n.id)
    assert found is not None
    return found


def save(
    conn: Connection,
    n: Newsletter,
    *,
    fields: Fields,
    actor: Actor,
    now: datetime,
    audit: Audit,
    renderer: Renderer,
    expected_revision: int | None = None,
    detail: dict[str, Any] | None = None,
) -> Newsletter:
    """Change a draft (approved text never changes); written in the editor, so any files
    imported from the command line give way to the fields. A page that read an older
    ``expected_revision`` gets :class:`campaigns.review.StaleRevision`; fields that fail
    :meth:`Fields.check` are refused and nothing is stored."""
    fields.check(renderer)
    current = _reload(conn, n)
    review.save(
        conn,
        KIND,
        current,
        now,
        actor=actor,
        audit=audit,
        expected_revision=expected_revision,
        detail=detail,
        sources=None,
        **fields.values(),
    )
    return _reload(conn, n)


def submit(conn: Connection, n: Newsletter, now: datetime, *, audit: Audit) -> Newsletter:
    """Draft → in review (the caller checked the content first)."""
    review.submit(conn, KIND, n, now, audit=audit)
    return _reload(conn, n)


def approve(
    conn: Connection, n: Newsletter, reviewer: Actor, note: str, now: datetime, *, audit: Audit
) -> Newsletter:
    """A clinician's approval (never of a newsletter they edited)."""
    review.approve(conn, KIND, n, reviewer, note, now, audit=audit)
    return _reload(conn, n)


def request_changes(
    conn: Connection, n: Newsletter, reviewer: Actor, note: str, now: datetime, *, audit: Audit
) -> Newsletter:
    review.request_changes(conn, KIND, n, reviewer, note, now, audit=audit)
    return _reload(conn, n)


def mark_scheduled(
    conn: Connection,
    n: Newsletter,
    now: datetime,
    *,
    audit: Audit,
    detail: dict[str, Any] | None = None,
) -> Newsletter:
    review.move(
        conn,
        KIND,
        n,
        (APPROVED,),
        SCHEDULED,
        now,
        audit=audit,
        action="schedule",
        detail=detail,
        scheduled_at=now,
    )
    return _reload(conn, n)


def mark_cancelled(
    conn: Connection,
    n: Newsletter,
    now: datetime,
    *,
    audit: Audit,
    detail: dict[str, Any] | None = None,
) -> Newsletter:
    review.move(
        conn,
        KIND,
        n,
        (DRAFT, IN_REVIEW, APPROVED, SCHEDULED),
        CANCELLED,
        now,
        audit=audit,
        action="cancel",
        detail=detail,
        cancelled_at=now,
    )
    return _reload(conn, n)


def timing_problem(
    local_at: str | None, zone: ZoneInfo, now: datetime, lead: timedelta = REVIEW_LEAD
) -> str | None:
    """Why ``local_at`` (wall time, read in the clinic's ``zone``) cannot be the delivery
    time, in words for the page; None when it can. It must be at least ``lead`` after
    ``now``: the review lead when submitting, nothing more when re-timing approved text."""
    if not local_at:
        return "Choose the local date and time it should arrive."
    try:
        wall = datetime.strptime(local_at, LOCAL_FORMAT)
    except ValueError:
        return f"The delivery time {local_at!r} is not a date and time."
    at = wall.replace(tzinfo=zone).astimezone(UTC)
    shown = f"{wall:%d %b %Y %H:%M}"
    if at <= now:
        return f"The delivery time {shown} has already passed: choose a later one."
    if at < now + lead:
        minutes = int(lead.total_seconds() // 60)
        return (
            f"The delivery time {shown} is less than {minutes} minutes away, too soon for a "
            "clinician to review it: choose a later one."
        )
    return None


def retime(
    conn: Connection,
    n: Newsletter,
    local_at: str,
    now: datetime,
    *,
    audit: Audit,
) -> Newsletter:
    """A new delivery time for approved text, without a new review: only the time changes
    (the approval covers the subject, preheader, body and audience, which stay as approved),
    audited with the time before and after. The caller checked the time
    (:func:`timing_problem`)."""
    if n.state != APPROVED:
        raise NewsletterError(
            f"this newsletter is {n.state.replace('_', ' ')}; only an approved newsletter "
            "not yet scheduled can be given a new time"
        )
    review.move(
        conn,
        KIND,
        n,
        (APPROVED,),
        APPROVED,
        now,
        audit=audit,
        action="retime",
        detail={"before": {"local_at": n.local_at}, "after": {"local_at": local_at}},
        local_at=local_at,
    )
    return _reload(conn, n)
