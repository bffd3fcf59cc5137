"""What a person did with their email, kept as facts segment rules can test.

The engagement package decides what counts as a human open or click (machine opens and link
scanners are filtered out first) and records it here through :func:`record`; the one-click
check-in links record answers the same way. Rules such as ``clicked: spasm-education/the-slow-build-up`` or
``checkin: worse`` read these rows, both in Python (:class:`Activity` inside ``Facts``) and in
SQL (``segments.compile_rule``), so branching and segment counts agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, case, select

from storage.bulk import in_values
from storage.sql import dialect_insert
from subscribers.tables import subscriber_activity
from templates.checkin import ANSWERS

OPEN = "open"
CLICK = "click"
CHECKIN = "checkin"
KINDS = (OPEN, CLICK, CHECKIN)
CHECKIN_ANSWERS = ANSWERS  # templates.checkin: the one list


@dataclass(frozen=True)
class Activity:
    """One person's activity: which (kind, campaign, step) they have done, their latest
    check-in answer (the answer with the latest time; ties go to the later-recorded row), and
    every answer on record (each answered email's answer, so an earlier "worse" stays visible
    after a later "better")."""

    done: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)
    last_checkin: str | None = None
    checkins: frozenset[str] = field(default_factory=frozenset)

    def did(self, kind: str, campaign_id: str, step_id: str | None) -> bool:
        """Did they do ``kind`` for that step (or for any step of the campaign)?"""
        if step_id is not None:
            return (kind, campaign_id, step_id) in self.done
        return any(k == kind and c == campaign_id for k, c, _ in self.done)


NOTHING = Activity()


def record(
    conn: Connection,
    subscriber_id: int,
    kind: str,
    at: datetime,
    *,
    campaign_id: str = "",
    step_id: str = "",
    value: str | None = None,
) -> None:
    """Upsert one activity fact; repeated opens count up, a new check-in answer replaces the old."""
    if kind not in KINDS:
        raise ValueError(f"unknown activity kind {kind!r}")
    if kind == CHECKIN and value not in CHECKIN_ANSWERS:
        raise ValueError(f"a check-in answer is one of {', '.join(CHECKIN_ANSWERS)}")
    stmt = dialect_insert(conn, subscriber_activity).values(
        subscriber_id=subscriber_id,
        kind=kind,
        campaign_id=campaign_id,
        step_id=step_id,
        value=value,
        count=1,
        first_at=at,
        last_at=at,
    )
    excluded = stmt.excluded
    t = subscriber_activity
    newer = excluded.last_at >= t.c.last_at  # webhook events may arrive out of order
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                subscriber_activity.c.subscriber_id,
                subscriber_activity.c.kind,
                subscriber_activity.c.campaign_id,
                subscriber_activity.c.step_id,
            ],
            set_={
                "count": t.c.count + 1,
                "value": case((newer, excluded.value), else_=t.c.value),
                "last_at": case((newer, excluded.last_at), else_=t.c.last_at),
                "first_at": case(
                    (excluded.first_at < t.c.first_at, excluded.first_at), else_=t.c.first_at
                ),
            },
        )
    )


def activity_of(conn: Connection, ids: Iterable[int]) -> dict[int, Activity]:
    """Activity for many people at once (one query); absent people have none."""
    ids = list(ids)
    done: dict[int, set[tuple[str, str, str]]] = {}
    latest: dict[int, tuple[datetime, int, str]] = {}
    answers: dict[int, set[str]] = {}
    t = subscriber_activity
    rows = conn.execute(
        select(t.c.subscriber_id, t.c.kind, t.c.campaign_id, t.c.step_id, t.c.value)
        .add_columns(t.c.last_at, t.c.id)
        .where(in_values(conn, t.c.subscriber_id, ids))
    )
    for sid, kind, campaign_id, step_id, value, last_at, row_id in rows:
        done.setdefault(sid, set()).add((kind, campaign_id, step_id))
        if kind == CHECKIN and value is not None:
            answers.setdefault(sid, set()).add(value)
            key = (last_at, row_id, value)
            if sid not in latest or key[:2] > latest[sid][:2]:
                latest[sid] = key
    return {
        sid: Activity(
            done=frozenset(done.get(sid, ())),
            last_checkin=latest[sid][2] if sid in latest else None,
            checkins=frozenset(answers.get(sid, ())),
        )
        for sid in set(done) | set(latest)
    }
