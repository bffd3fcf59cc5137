"""A clinician's approval given on the command line (``clinicmail campaigns approve``), and what
the service says while content waits for one.

The approval itself is the review workflow's (:mod:`campaigns.review`): this module finds what
awaits review, has the clinician sign in with their console password, and approves and makes
live in one transaction with its audit entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from app.context import AppContext
from campaigns import newsletters as nl
from campaigns import versions
from campaigns.references import BROADCAST_PREFIX
from campaigns.review import Actor, ReviewError
from core.errors import InputError
from staff import accounts, audit
from staff.passwords import PasswordsBusy


class ApprovalRefused(InputError, PermissionError):
    """Nothing was approved; the message says why in one line."""


@dataclass(frozen=True)
class Approved:
    what: str  # "campaign" or "newsletter"
    name: str  # campaign id or newsletter slug
    number: int | None  # the version number, for a campaign
    live: bool  # the content may now reach patients


def sign_in_clinician(ctx: AppContext, email: str, password: str, now: datetime) -> Actor:
    """The clinician ``email`` signed in with ``password`` (counted like a console sign-in, so
    the same lockout applies), as the workflow's actor."""
    try:
        outcome = accounts.sign_in(ctx.db, email, password, now)
    except PasswordsBusy:
        raise ApprovalRefused("too many sign-ins at once; try again in a few seconds") from None
    if outcome.locked_until is not None:
        raise ApprovalRefused(
            f"{email} is locked after repeated wrong passwords until "
            f"{outcome.locked_until:%H:%M} UTC"
        )
    if outcome.user is None:
        raise ApprovalRefused(f"wrong password, or no active console account {email}")
    return Actor(outcome.user.id, outcome.user.email, outcome.user.role)


def approve(
    ctx: AppContext,
    name: str,
    reviewer: Actor,
    note: str,
    now: datetime,
    *,
    number: int | None = None,
) -> Approved:
    """Approve what awaits review under ``name`` (a campaign id, or a newsletter's slug or its
    ``broadcast.<slug>`` id) and make a campaign version live, in one transaction with its
    audit entries. Raises :class:`ApprovalRefused` with nothing changed."""
    _ = ctx.catalog  # the library is seeded first
    with ctx.db.begin() as conn:
        user = accounts.get(conn, reviewer.id) if reviewer.id is not None else None
        write = audit.writer(user, now)
        try:
            if versions.versions_of(conn, name):
                return _approve_version(ctx, conn, name, reviewer, note, now, number, write)
            slug = name.removeprefix(BROADCAST_PREFIX)
            letter = nl.by_slug(conn, slug)
            if letter is None:
                raise ApprovalRefused(f"no campaign or newsletter {name!r}")
            if letter.state != nl.IN_REVIEW:
                raise ApprovalRefused(
                    f"newsletter {slug!r} is {letter.state.replace('_', ' ')}, not awaiting review"
                )
            nl.approve(conn, letter, reviewer, note, now, audit=write)
            return Approved("newsletter", slug, None, False)
        except ReviewError as exc:
            raise ApprovalRefused(str(exc)) from None


def _approve_version(
    ctx: AppContext,
    conn: Connection,
    campaign_id: str,
    reviewer: Actor,
    note: str,
    now: datetime,
    number: int | None,
    write: audit.Writer,
) -> Approved:
    waiting = versions.awaiting_review(conn, campaign_id)
    if number is not None:
        waiting = [v for v in waiting if v.number == number]
        if not waiting:
            raise ApprovalRefused(f"version {number} of {campaign_id} is not awaiting review")
    if not waiting:
        live = versions.live(conn, campaign_id)
        said = (
            f"; its live version {live.number} was approved by {live.reviewed_by}"
            if live is not None and live.reviewed_by
            else ""
        )
        raise ApprovalRefused(f"nothing of {campaign_id} awaits review{said}")
    if len(waiting) > 1:
        numbers = ", ".join(str(v.number) for v in waiting)
        raise ApprovalRefused(
            f"versions {numbers} of {campaign_id} await review; choose one with --version"
        )
    v = versions.approve(
        conn, waiting[0], reviewer, note, now, ctx.settings.review_every, audit=write
    )
    if v.state == versions.APPROVED:
        v = versions.activate(conn, v, now, audit=write)
    return Approved("campaign", campaign_id, v.number, True)


def awaiting_approval(ctx: AppContext) -> list[str]:
    """Live campaigns no clinician of this installation has approved yet (by id)."""
    with ctx.db.begin() as conn:
        return [
            v.campaign_id for v in versions.in_state(conn, versions.ACTIVE) if not v.clinic_reviewed
        ]


def gate_notice(ctx: AppContext) -> str | None:
    """One line for start-up, ``clinicmail doctor`` and the dashboard while live content waits
    for a clinician's approval; None when nothing waits. With the ``sendgrid`` or ``smtp``
    transport that content sends nothing; with the ``outbox`` it is sent, marked unreviewed."""
    waiting = awaiting_approval(ctx)
    if not waiting:
        return None
    names = ", ".join(waiting)
    if not ctx.requires_approval:
        return (
            f"{len(waiting)} campaign(s) are not yet approved by a clinician here ({names}); "
            "the outbox transport shows them marked unreviewed, and sendgrid or smtp would send "
            "nothing from them until a clinician approves them"
        )
    return (
        f"{len(waiting)} campaign(s) await a clinician's approval and send nothing until it is "
        f"given ({names}); only the safety email and system emails go out. Approve with "
        "'clinicmail campaigns approve CAMPAIGN --as EMAIL' or on the console's review screen"
    )
