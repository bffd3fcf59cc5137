"""The one review workflow for everything patients read: campaign content versions
(:mod:`campaigns.versions`) and newsletters (:mod:`campaigns.newsletters`).

Every reviewed row moves through::

    draft → in_review → approved (immutable) → active → retired        (a campaign version)
      ↑________|  (changes requested)          → scheduled → cancelled  (a newsletter)

This module owns the states, who may take each step and the audit entry of every step:

- anyone on staff (or the command line) edits a draft and submits it for review;
- only a clinician approves or sends back, and never content they edited themselves
  (:func:`may_approve`; the one place the clinician rule lives);
- a change is made only if nobody moved or saved the row meanwhile: the state it is expected
  in, and for saves the revision the editor's page read (:func:`save`), so a stale page never
  overwrites someone else's change;
- each step writes its audit entry through the caller's :class:`Audit` on the same connection,
  so the change and its entry commit, or roll back, together.

Content reaches a patient through the ``sendgrid`` or ``smtp`` transport only once a clinician
of this installation approved it (:func:`clinic_approved`); the ``outbox`` transport (a demo
that sends nothing) may show unreviewed content, marked as such.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, update

from campaigns.tables import ReviewedContent
from core.errors import InputError

DRAFT, IN_REVIEW, APPROVED = "draft", "in_review", "approved"
CLINICIAN = "clinician"  # the one role that approves content (not inherited by ops)


class ReviewError(InputError, ValueError):
    """A step the workflow does not allow; the message says why in plain words. Each kind of
    reviewed content has its own subclass (``VersionError``, ``NewsletterError``)."""


class StaleRevision(ReviewError):
    """Someone saved the row since the page was read; ``current`` is their version of it."""

    def __init__(self, message: str, current: ReviewedContent) -> None:
        super().__init__(message)
        self.current = current


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff member (id, address, role) or the command line (id None)."""

    id: int | None
    name: str
    role: str = "ops"


CLI = Actor(None, "cli")


# Writes one audit entry on the step's connection (inside the caller's transaction):
# (conn, action, target type, target id, detail).
Audit = Callable[[Connection, str, str, str, dict[str, Any] | None], None]


@dataclass(frozen=True)
class Kind:
    """A kind of reviewed content: its table, how messages and the audit log name it, and the
    error its refusals raise."""

    table: Table
    what: str  # "version", "newsletter": in messages
    target_type: str  # the audit log's target type
    action_prefix: str  # the audit log's action prefix ("content", "newsletter")
    error: type[ReviewError]
    # What the audit entry says about a row besides its id (opaque ids and numbers only).
    describe: Callable[[Any], dict[str, Any]] = lambda row: {}


def is_reviewer(role: str) -> bool:
    """Only a clinician reviews content (approves, or sends it back); ops does not inherit it."""
    return role == CLINICIAN


def may_review(actor: Actor, kind: Kind) -> None:
    """Raises ``kind.error`` unless ``actor`` may review (:func:`is_reviewer`)."""
    if not is_reviewer(actor.role):
        raise kind.error("only a clinician reviews content")


def may_approve(actor: Actor, row: ReviewedContent, kind: Kind) -> None:
    """Only a clinician approves, and never content they edited."""
    may_review(actor, kind)
    if actor.id is not None and actor.id in row.editor_ids:
        raise kind.error(f"you edited this {kind.what}, so another clinician must review it")


def clinic_approved(row: ReviewedContent) -> bool:
    """True when a clinician signed in to this installation approved the row (an approval is
    never imported: it is given here, by a staff account with an id)."""
    return row.reviewed_at is not None and getattr(row, "reviewed_by_id", None) is not None


def move(
    conn: Connection,
    kind: Kind,
    row: ReviewedContent,
    frm: tuple[str, ...],
    to: str,
    now: datetime,
    *,
    audit: Audit,
    action: str,
    detail: Mapping[str, Any] | None = None,
    **values: Any,
) -> None:
    """``row`` → state ``to`` (with ``values``), only if it is still in one of ``frm``, and its
    audit entry ``<prefix>.<action>``, on the same connection."""
    t = kind.table
    done = conn.execute(
        update(t)
        .where(t.c.id == row.id, t.c.state.in_(frm))
        .values(state=to, updated_at=now, revision=t.c.revision + 1, **values)
    )
    if not done.rowcount:
        raise kind.error(
            f"this {kind.what} is {row.state.replace('_', ' ')}; it cannot become "
            f"{to.replace('_', ' ')}"
        )
    audit(
        conn,
        f"{kind.action_prefix}.{action}",
        kind.target_type,
        row.id,
        {**kind.describe(row), **(detail or {}), "state": to},
    )


def save(
    conn: Connection,
    kind: Kind,
    row: ReviewedContent,
    now: datetime,
    *,
    actor: Actor,
    audit: Audit,
    expected_revision: int | None,
    current: ReviewedContent | None = None,
    action: str = "edit",
    detail: Mapping[str, Any] | None = None,
    **values: Any,
) -> None:
    """Change a draft's content (approved content never changes). ``expected_revision`` is the
    revision the editor's page read: when someone saved since, :class:`StaleRevision` is raised
    with ``current`` (the row as it is now) and nothing changes. None skips the check (a
    command that read the row in the same transaction)."""
    if row.state != DRAFT:
        raise kind.error(f"only a draft can be changed; this {kind.what} is {row.state}")
    if expected_revision is not None and expected_revision != row.revision:
        raise StaleRevision(
            f"someone else saved this {kind.what} since you opened it; your change was not "
            "saved. Their version is shown: make your change again on it.",
            current or row,
        )
    t = kind.table
    editors = sorted({*row.editor_ids, *([actor.id] if actor.id is not None else [])})
    done = conn.execute(
        update(t)
        .where(t.c.id == row.id, t.c.state == DRAFT, t.c.revision == row.revision)
        .values(updated_at=now, revision=row.revision + 1, editor_ids=editors, **values)
    )
    if not done.rowcount:
        raise StaleRevision(
            f"someone else changed this {kind.what} at the same moment; your change was not "
            "saved. Reload it and make your change again.",
            current or row,
        )
    audit(
        conn,
        f"{kind.action_prefix}.{action}",
        kind.target_type,
        row.id,
        {**kind.describe(row), **(detail or {})},
    )


def submit(
    conn: Connection, kind: Kind, row: ReviewedContent, now: datetime, *, audit: Audit
) -> None:
    """Draft → in review (the caller checked the content first)."""
    move(conn, kind, row, (DRAFT,), IN_REVIEW, now, audit=audit, action="submit", submitted_at=now)


def approve(
    conn: Connection,
    kind: Kind,
    row: ReviewedContent,
    reviewer: Actor,
    note: str,
    now: datetime,
    *,
    audit: Audit,
    frm: tuple[str, ...] = (IN_REVIEW,),
    to: str = APPROVED,
    detail: Mapping[str, Any] | None = None,
    **values: Any,
) -> None:
    """A clinician's approval: in review → approved (or ``frm`` → ``to``, e.g. the review of
    live content nobody here has reviewed yet), recording who, when and the note."""
    may_approve(reviewer, row, kind)
    move(
        conn,
        kind,
        row,
        frm,
        to,
        now,
        audit=audit,
        action="approve",
        detail={**(detail or {}), "note": note.strip()},
        reviewed_by=reviewer.name,
        reviewed_by_id=reviewer.id,
        reviewed_at=now,
        review_note=note.strip() or None,
        **values,
    )


def request_changes(
    conn: Connection,
    kind: Kind,
    row: ReviewedContent,
    reviewer: Actor,
    note: str,
    now: datetime,
    *,
    audit: Audit,
) -> None:
    """In review → draft, with the clinician's note for the author."""
    may_review(reviewer, kind)
    move(
        conn,
        kind,
        row,
        (IN_REVIEW,),
        DRAFT,
        now,
        audit=audit,
        action="request_changes",
        detail={"note": note.strip()},
        review_note=note.strip() or None,
    )
