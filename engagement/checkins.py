"""One-click check-ins: "How is your pain this week? Better / About the same / Worse".

A step with ``checkin: true`` carries three links ``{BASE_URL}/checkin/{token}/{answer}``; the
token is the send's opaque id, signed with the ``checkin`` salt
(:class:`subscribers.tokens.Tokens`), so it names one email to one person and nothing else. The answer is kept as the person's activity fact
for that campaign step (``subscribers.activity``, kind ``checkin``): the latest answer wins, and
segment rules (``checkin: worse``) and branching read it.

Answering "worse" calls the composition root's ``on_worse`` hook (the scheduler queues an
invitation to book an assessment and a staff notice, once per answered email).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from campaigns.ledger_reads import campaign_send
from subscribers import activity
from subscribers.tables import subscriber_activity
from templates.checkin import ANSWERS

WORSE = "worse"

# (conn, subscriber id, the answered email's send_id, now): queue the follow-up for "worse".
WorseHook = Callable[[Connection, int, str, datetime], None]


@dataclass(frozen=True)
class CheckinSend:
    """The campaign email a check-in link belongs to."""

    send_id: str
    subscriber_id: int
    campaign_id: str
    step_id: str
    sent_at: datetime | None


def find_send(conn: Connection, send_id: str) -> CheckinSend | None:
    row = campaign_send(conn, send_id)
    if row is None:
        return None
    return CheckinSend(send_id, row.subscriber_id, row.campaign_id, row.step_id, row.sent_at)


def current_answer(conn: Connection, send: CheckinSend) -> str | None:
    """The answer already given for this email's step, if any."""
    t = subscriber_activity
    value = conn.execute(
        select(t.c.value).where(
            t.c.subscriber_id == send.subscriber_id,
            t.c.kind == activity.CHECKIN,
            t.c.campaign_id == send.campaign_id,
            t.c.step_id == send.step_id,
        )
    ).scalar_one_or_none()
    return value if isinstance(value, str) else None


def answer(
    conn: Connection,
    send: CheckinSend,
    value: str,
    now: datetime,
    on_worse: WorseHook | None = None,
) -> bool:
    """Record ``value`` for the email; return False when it was already the answer (nothing
    changes: posting the same answer twice is idempotent)."""
    if value not in ANSWERS:
        raise ValueError(f"a check-in answer is one of {', '.join(ANSWERS)}")
    if current_answer(conn, send) == value:
        return False
    activity.record(
        conn,
        send.subscriber_id,
        activity.CHECKIN,
        now,
        campaign_id=send.campaign_id,
        step_id=send.step_id,
        value=value,
    )
    if value == WORSE and on_worse is not None:
        # The hook is idempotent per answered email (the ledger's unique key), so answering
        # worse, then better, then worse again still queues the follow-up once.
        on_worse(conn, send.subscriber_id, send.send_id, now)
    return True
