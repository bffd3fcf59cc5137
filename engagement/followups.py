"""Personal follow-up as a tracked task: every red-flag signup, and every check-in answered
"worse", opens a follow-up that a clinician or ops member closes with an outcome and a note.

- :func:`open_followup` is called where the safety email (or the check-in's invitation to book)
  is queued, in the same transaction; it is idempotent per person and what it answers.
- A follow-up falls due :class:`Policy` after it opened (``CLINICMAIL_FOLLOWUP_WITHIN``, one
  working day by default: the same clock time on the next day the clinic is open, weekends and
  clinic holidays skipped). Open past that, staff are reminded once (:func:`due_reminders`,
  :func:`mark_reminded`) and the console counts it as overdue.
- :func:`acknowledge` closes one: ``contacted`` or ``no_action`` with a note, by a signed-in
  clinician or ops member, its audit entry written on the same connection. The entry names the
  follow-up by its opaque id and the outcome only: the note may hold health data.
- With the policy off the clinic does not follow people up personally: nothing is opened, and
  the safety email does not promise contact (``clinic.follow_up`` in the email templates).

What a person reported (their warning-sign codes, or their check-in answer) is kept here for
signed-in staff and never appears in a log line, a URL or a staff email.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, insert, select, update

from core.errors import InputError
from engagement.tables import followups
from subscribers.symptoms import RED_FLAGS
from subscribers.tables import subscribers

RED_FLAG, CHECKIN = "red_flag", "checkin"
CONTACTED, NO_ACTION = "contacted", "no_action"
OUTCOMES = {CONTACTED: "Contacted", NO_ACTION: "No action needed"}
NOTE_LIMIT = 4000
OFF = "off"
DEFAULT_WITHIN = "1 working day"

# Writes one audit entry on the caller's connection: (conn, action, target type, target id,
# detail). :func:`staff.audit.writer` makes one for a staff member.
Audit = Callable[[Connection, str, str, str, dict[str, Any] | None], None]


class FollowupError(InputError, ValueError):
    """A follow-up that cannot be closed as asked (unknown, already closed, no note)."""


_UNITS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}


@dataclass(frozen=True)
class Policy:
    """When an open follow-up falls due. ``working_days`` counts days the clinic is open
    (Monday to Friday, not a holiday) in ``zone``; otherwise ``after`` is a plain duration.
    ``enabled`` False: the clinic does not follow people up (nothing opens)."""

    enabled: bool = True
    working_days: int = 1
    after: timedelta | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    holidays: frozenset[date] = frozenset()

    @classmethod
    def parse(
        cls, value: str, zone: ZoneInfo | None = None, holidays: frozenset[date] = frozenset()
    ) -> Policy:
        """``off``, ``N working day(s)``, or ``N hour(s)|day(s)|week(s)``; ValueError otherwise."""
        words = value.strip().lower().split()
        z = zone or ZoneInfo("UTC")
        if words == [OFF]:
            return cls(enabled=False, zone=z, holidays=holidays)
        if len(words) in (2, 3) and words[0].isdigit() and 1 <= int(words[0]) <= 1000:
            n = int(words[0])
            if len(words) == 3 and words[1] == "working" and words[2].rstrip("s") == "day":
                return cls(working_days=n, zone=z, holidays=holidays)
            if len(words) == 2 and words[1].rstrip("s") in _UNITS:
                return cls(working_days=0, after=n * _UNITS[words[1].rstrip("s")], zone=z)
        raise ValueError("must look like '1 working day', '4 hours', '2 days' or 'off'")

    def due(self, opened: datetime) -> datetime:
        if self.after is not None:
            return opened + self.after
        local = opened.astimezone(self.zone)
        day, left = local.date(), self.working_days
        while left:
            day += timedelta(days=1)
            if day.weekday() < 5 and day not in self.holidays:
                left -= 1
        at = datetime.combine(day, local.time(), tzinfo=self.zone)
        return at.astimezone(opened.tzinfo)


@dataclass(frozen=True)
class Followup:
    public_id: str
    subscriber_public_id: str
    email: str
    first_name: str | None
    reason: str
    reported: dict[str, Any]
    opened_at: datetime
    due_at: datetime
    reminded_at: datetime | None
    outcome: str | None
    note: str | None
    closed_at: datetime | None
    closed_by: str | None

    @property
    def what(self) -> list[str]:
        """What they reported, in words for staff."""
        if self.reason == RED_FLAG:
            from subscribers.symptoms import SYMPTOMS

            labels = {s.code: s.label for s in SYMPTOMS}
            return [labels.get(c, c) for c in self.reported.get("codes", [])]
        step = self.reported.get("step_id", "")
        return [f'Check-in answered "{self.reported.get("answer", "worse")}" ({step})']

    def overdue(self, now: datetime) -> bool:
        return self.closed_at is None and self.due_at <= now


def open_followup(
    conn: Connection,
    policy: Policy,
    subscriber_id: int,
    reason: str,
    source_key: str,
    reported: dict[str, Any],
    now: datetime,
) -> bool:
    """Open a follow-up unless one exists for this person and ``source_key`` (or the policy is
    off); True when one was opened."""
    if not policy.enabled:
        return False
    exists = conn.execute(
        select(followups.c.id).where(
            followups.c.subscriber_id == subscriber_id, followups.c.source_key == source_key
        )
    ).first()
    if exists is not None:
        return False
    conn.execute(
        insert(followups).values(
            public_id="fu_" + secrets.token_hex(8),
            subscriber_id=subscriber_id,
            reason=reason,
            source_key=source_key,
            reported=reported,
            opened_at=now,
            due_at=policy.due(now),
        )
    )
    return True


def open_for_red_flag(
    conn: Connection, policy: Policy, subscriber_id: int, codes: frozenset[str], now: datetime
) -> bool:
    """A red-flag person was confirmed: one follow-up per person, naming their warning signs."""
    flags = sorted(c for c in codes if c in RED_FLAGS)
    return open_followup(conn, policy, subscriber_id, RED_FLAG, "red-flag", {"codes": flags}, now)


def open_for_checkin(
    conn: Connection,
    policy: Policy,
    subscriber_id: int,
    send_id: str,
    campaign_id: str,
    step_id: str,
    now: datetime,
) -> bool:
    """A check-in answered "worse": one follow-up per answered email."""
    reported = {"answer": "worse", "campaign_id": campaign_id, "step_id": step_id}
    return open_followup(conn, policy, subscriber_id, CHECKIN, send_id, reported, now)


_COLUMNS = (
    followups,
    subscribers.c.public_id.label("subscriber_public_id"),
    subscribers.c.email,
    subscribers.c.first_name,
)


def _followup(row: Any) -> Followup:
    m = row._mapping
    return Followup(
        public_id=m["public_id"],
        subscriber_public_id=m["subscriber_public_id"],
        email=m["email"],
        first_name=m["first_name"],
        reason=m["reason"],
        reported=dict(m["reported"] or {}),
        opened_at=m["opened_at"],
        due_at=m["due_at"],
        reminded_at=m["reminded_at"],
        outcome=m["outcome"],
        note=m["note"],
        closed_at=m["closed_at"],
        closed_by=m["closed_by"],
    )


def _joined() -> Any:
    return select(*_COLUMNS).join(subscribers, subscribers.c.id == followups.c.subscriber_id)


def open_ones(conn: Connection, limit: int = 500) -> list[Followup]:
    """Open follow-ups, the longest overdue first."""
    query = (
        _joined()
        .where(followups.c.closed_at.is_(None))
        .order_by(followups.c.due_at, followups.c.id)
        .limit(limit)
    )
    return [_followup(r) for r in conn.execute(query)]


def closed_ones(conn: Connection, limit: int = 50) -> list[Followup]:
    """The latest closed follow-ups, newest first."""
    query = (
        _joined()
        .where(followups.c.closed_at.is_not(None))
        .order_by(followups.c.closed_at.desc(), followups.c.id.desc())
        .limit(limit)
    )
    return [_followup(r) for r in conn.execute(query)]


def of_person(conn: Connection, subscriber_id: int) -> list[Followup]:
    query = _joined().where(followups.c.subscriber_id == subscriber_id).order_by(followups.c.id)
    return [_followup(r) for r in conn.execute(query)]


@dataclass(frozen=True)
class Counts:
    open: int
    overdue: int


def counts(conn: Connection, now: datetime) -> Counts:
    """How many are open, and how many of those are past due (the dashboard's figures)."""
    is_open = followups.c.closed_at.is_(None)
    total = conn.execute(select(func.count()).where(is_open)).scalar_one()
    late = conn.execute(select(func.count()).where(is_open, followups.c.due_at <= now)).scalar_one()
    return Counts(int(total), int(late))


def due_reminders(conn: Connection, now: datetime) -> list[str]:
    """Public ids of open follow-ups past due whose staff were not yet reminded."""
    query = (
        select(followups.c.public_id)
        .where(
            followups.c.closed_at.is_(None),
            followups.c.due_at <= now,
            followups.c.reminded_at.is_(None),
        )
        .order_by(followups.c.due_at)
    )
    return list(conn.execute(query).scalars())


def mark_reminded(conn: Connection, public_ids: list[str], now: datetime) -> None:
    if public_ids:
        conn.execute(
            update(followups)
            .where(followups.c.public_id.in_(public_ids), followups.c.reminded_at.is_(None))
            .values(reminded_at=now)
        )


def acknowledge(
    conn: Connection,
    public_id: str,
    outcome: str,
    note: str,
    by: str,
    audit: Audit,
    now: datetime,
) -> None:
    """Close the follow-up with ``outcome`` and ``note`` by staff member ``by`` (their address);
    its audit entry ``followup.<outcome>`` is written by ``audit`` on ``conn``. Refused (and
    nothing changes) when it is unknown, already closed, or the outcome or note is missing."""
    if outcome not in OUTCOMES:
        raise FollowupError("choose what happened: contacted, or no action needed")
    note = note.strip()
    if not note:
        raise FollowupError("write a short note on what was done or decided")
    if len(note) > NOTE_LIMIT:
        raise FollowupError(f"the note is too long (at most {NOTE_LIMIT} characters)")
    done = conn.execute(
        update(followups)
        .where(followups.c.public_id == public_id, followups.c.closed_at.is_(None))
        .values(outcome=outcome, note=note, closed_at=now, closed_by=by)
    )
    if done.rowcount != 1:
        known = conn.execute(
            select(followups.c.closed_by).where(followups.c.public_id == public_id)
        ).first()
        if known is None:
            raise FollowupError("there is no such follow-up")
        raise FollowupError(f"this follow-up was already closed by {known.closed_by}")
    audit(conn, f"followup.{outcome}", "followup", public_id, {"outcome": outcome})


def export_of(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    """A person's follow-ups for their data export and record page (what they reported, the
    outcome and the note staff wrote)."""
    return [
        {
            "id": f.public_id,
            "reason": f.reason,
            "reported": f.reported,
            "opened_at": f.opened_at.isoformat(),
            "due_at": f.due_at.isoformat(),
            "reminded_at": f.reminded_at.isoformat() if f.reminded_at else None,
            "outcome": f.outcome,
            "note": f.note,
            "closed_at": f.closed_at.isoformat() if f.closed_at else None,
            "closed_by": f.closed_by,
        }
        for f in of_person(conn, subscriber_id)
    ]
