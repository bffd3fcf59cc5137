"""The send ledger (docs/architecture.md, invariant 2): one row per email, written before any transport call.

This module is the ledger's one owner: every state change of a send is one named, set-based
function below (one statement for a whole batch), and no other module writes the table. Its read
half is :mod:`campaigns.ledger_reads`: every question another module asks of ``sends`` is a
named function there (re-exported nowhere else), so no module but these two imports the table
(``tests/test_ledger_ownership.py``; the two engagement modules that join it with provider events
in one statement are the listed exceptions). It
lives with the campaigns (what was planned for whom, for which step) so that engagement can map
provider events back to a (person, campaign, step) without importing the scheduler.

The main path, and every transition (each a function here)::

    pending ──claim──▶ claimed ──start_sending──▶ sending ──mark_sent──▶ sent
       ▲  ▲              │                          │
       │  └──unclaim─────┘                          ├──mark_retry──▶ retry ──claim──▶ claimed
       │                                            ├──mark_failed─▶ failed
       └──settle_unknown (no event in window)───────┴──mark_unknown─▶ unknown

    transition        from                        to
    plan              (none)                      pending
    claim             pending, retry              claimed (lease; the attempt counts)
    cancel            pending, retry              cancelled (consent/suppression failed)
    unclaim           claimed                     pending (never reached the transport)
    start_sending     claimed                     sending (committed before the request)
    mark_sent         sending                     sent (moves the weekly cap)
    mark_retry        sending                     retry (due again later)
    mark_failed       sending, claimed            failed (permanent, or it cannot render)
    mark_unknown      sending                     unknown (no answer to the request)
    recover_expired   claimed / sending, lease    pending / unknown
                      ran out
    settle_unknown    unknown                     sent (a provider event proves it) /
                                                  pending (no event in RECONCILE_WINDOW)
    cancel_campaign   pending, retry, claimed     cancelled (a broadcast was cancelled)
    hold_campaign     pending, retry              the same, due later (complaint pause)

A ``claimed`` row whose lease expired never reached the transport, so it goes back to
``pending`` and is claimed again. A ``sending`` row whose lease expired may have been
delivered: it becomes ``unknown``, never resent blindly.

Acceptance moves the weekly cap (:mod:`campaigns.cadence`): :func:`mark_sent` and
:func:`settle_unknown` set ``subscribers.last_campaign_send_at`` for campaign email.

Status predicates are written into the SQL as literals (:func:`in_states`), so the partial
indexes below apply: SQLite cannot match a bound parameter against an index's WHERE clause, and
PostgreSQL's generic plans cannot either. A batch's ids (and :func:`plan`'s rows) travel as one
bound value (:mod:`storage.bulk`), so each transition is one statement whatever the batch size.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Index,
    Integer,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)

from storage.bulk import in_values, rows_table
from storage.schema import UTCDateTime, metadata, owner_column
from storage.sql import dialect_insert
from subscribers.tables import subscribers
from templates.system import CONFIRM


class Status(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


PENDING = Status.PENDING
CLAIMED = Status.CLAIMED
SENDING = Status.SENDING
SENT = Status.SENT
RETRY = Status.RETRY
FAILED = Status.FAILED
UNKNOWN = Status.UNKNOWN
CANCELLED = Status.CANCELLED

# How long an ``unknown`` send waits for a provider event before it may be sent again.
RECONCILE_WINDOW = timedelta(hours=6)

# kinds of email
CAMPAIGN = "campaign"
SYSTEM = "system"  # confirmation, safety: exempt from windows and the frequency cap
SYSTEM_CAMPAIGN = "_system"  # the campaign id of system email

sends = Table(
    "sends",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("send_id", String(32), nullable=False, unique=True),  # opaque, goes to the provider
    owner_column("subscriber_id", "subscribers.id"),
    Column("campaign_id", String(64), nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("variant_id", String(64), nullable=False, default="default"),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", UTCDateTime()),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime()),
    Column("transport", String(16)),
    Column("provider_message_id", String(128)),
    Column("error", Text),
    # The stored content version the email was rendered from (Campaign.version_id), if any.
    Column("content_version", String(64)),
    # Which episode of the person's pain the email belongs to (campaigns.enrollment.reenter):
    # one email per step *per episode*, so a person who comes back with a new episode can get
    # the series again. System email is always episode 1.
    Column("episode", Integer, nullable=False, default=1, server_default="1"),
    UniqueConstraint("subscriber_id", "campaign_id", "step_id", "episode"),
)


def in_states(*states: Status) -> ColumnElement[bool]:
    """``status IN (...)`` with the values in the SQL text (see the module docstring); part of
    the compiled statement, so SQLAlchemy's statement cache keeps it (the values are ours)."""
    values: list[ColumnElement[Any]] = [literal_column(f"'{Status(s).value}'") for s in states]
    if len(values) == 1:
        return sends.c.status == values[0]
    return sends.c.status.in_(values)


# Every index below holds only the rows one transition looks for, so each stays O(rows due).
_READY = in_states(PENDING, RETRY)
Index(
    "ix_sends_ready",
    sends.c.next_attempt_at,
    sends.c.id,
    sqlite_where=_READY,
    postgresql_where=_READY,
)
Index(
    "ix_sends_ready_email",
    sends.c.campaign_id,
    sends.c.step_id,
    sends.c.variant_id,
    sends.c.next_attempt_at,
    sends.c.id,
    sqlite_where=_READY,
    postgresql_where=_READY,
)
Index(
    "ix_sends_claimed",
    sends.c.lease_until,
    sqlite_where=in_states(CLAIMED),
    postgresql_where=in_states(CLAIMED),
)
Index(
    "ix_sends_sending",
    sends.c.lease_until,
    sqlite_where=in_states(SENDING),
    postgresql_where=in_states(SENDING),
)
Index(
    "ix_sends_unknown",
    sends.c.next_attempt_at,
    sqlite_where=in_states(UNKNOWN),
    postgresql_where=in_states(UNKNOWN),
)
Index("ix_sends_subscriber", sends.c.subscriber_id)
# Sends by when they left: the complaint rate per UTC day (engagement.complaints) and the
# engagement counts over a window of weeks stay O(rows in the window).
Index("ix_sends_sent_at", sends.c.sent_at)
_READY_SYSTEM = _READY & (sends.c.kind == literal_column(f"'{SYSTEM}'"))
Index(
    "ix_sends_ready_system",
    sends.c.next_attempt_at,
    sends.c.id,
    sqlite_where=_READY_SYSTEM,
    postgresql_where=_READY_SYSTEM,
)

# Planned or sent but not yet accepted by the provider (``unknown`` may have been: it waits).
IN_FLIGHT = (PENDING, RETRY, CLAIMED, SENDING, UNKNOWN)


def _update_ids(conn: Connection, ids: Sequence[int], where: Any, **values: Any) -> int:
    """One UPDATE for the rows ``ids`` (``where``: the states they may be in, or None for
    any); returns how many rows changed."""
    if not ids:
        return 0
    stmt = update(sends).where(in_values(conn, sends.c.id, ids))
    if where is not None:
        stmt = stmt.where(where)
    return max(int(conn.execute(stmt.values(**values)).rowcount or 0), 0)


# -- reading -----------------------------------------------------------------------------------
def ready_query(
    conn: Connection, now: datetime, held: Sequence[tuple[str, str, str]] = ()
) -> Select[Any] | None:
    """Rows that may be claimed now, of the same email (campaign, step, variant) as the oldest
    due one, oldest first; None when nothing is due. One email per claim is what lets dispatch
    fill each provider request (up to 1000 recipients share one rendered body).

    System email (safety, staff alerts, confirmations) comes before any campaign email, so
    after an outage the urgent mail goes first. Emails in ``held`` (set aside: the provider or
    the email library refused their content) are not claimed."""
    skip = [
        ~and_(sends.c.campaign_id == c, sends.c.step_id == st, sends.c.variant_id == v)
        for c, st, v in held
    ]
    oldest = conn.execute(
        select(sends.c.campaign_id, sends.c.step_id, sends.c.variant_id)
        .where(
            _READY,
            sends.c.kind == literal_column(f"'{SYSTEM}'"),
            sends.c.next_attempt_at <= now,
            *skip,
        )
        .order_by(sends.c.next_attempt_at, sends.c.id)
        .limit(1)
    ).first()
    if oldest is None:
        oldest = conn.execute(
            select(sends.c.campaign_id, sends.c.step_id, sends.c.variant_id)
            .where(_READY, sends.c.next_attempt_at <= now, *skip)
            .order_by(sends.c.next_attempt_at, sends.c.id)
            .limit(1)
        ).first()
    if oldest is None:
        return None
    return (
        select(
            sends.c.id,
            sends.c.send_id,
            sends.c.subscriber_id,
            sends.c.campaign_id,
            sends.c.step_id,
            sends.c.variant_id,
            sends.c.kind,
            sends.c.attempts,
        )
        .where(
            _READY,
            sends.c.next_attempt_at <= now,
            sends.c.campaign_id == oldest.campaign_id,
            sends.c.step_id == oldest.step_id,
            sends.c.variant_id == oldest.variant_id,
        )
        .order_by(sends.c.next_attempt_at, sends.c.id)
    )


def count_ready(conn: Connection, now: datetime) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(sends).where(_READY, sends.c.next_attempt_at <= now)
        ).scalar_one()
    )


def campaign_in_flight(conn: Connection, subscriber_ids: Iterable[int]) -> dict[int, datetime]:
    """People among ``subscriber_ids`` with a campaign email not yet accepted, with the latest
    moment one of them is due (it cannot be accepted before)."""
    ids = sorted(set(subscriber_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(sends.c.subscriber_id, func.max(sends.c.next_attempt_at))
        .where(
            in_values(conn, sends.c.subscriber_id, ids),
            sends.c.kind == CAMPAIGN,
            in_states(*IN_FLIGHT),
        )
        .group_by(sends.c.subscriber_id)
    )
    return {sid: due for sid, due in rows}


def analyze(conn: Connection) -> None:
    """Refresh PostgreSQL's statistics of the planner's two tables (the ledger and the
    enrollments) after a large plan, so the next statements pick the partial indexes."""
    conn.execute(text("ANALYZE sends, enrollments"))


# -- transitions -------------------------------------------------------------------------------
def new_row(
    *,
    subscriber_id: int,
    campaign_id: str,
    step_id: str,
    variant_id: str,
    kind: str,
    now: datetime,
    content_version: str | None = None,
    episode: int = 1,
) -> dict[str, object]:
    """A new ``pending`` row, due at once (for :func:`plan`), with a fresh opaque send id;
    ``episode`` is the enrollment's (system email: 1)."""
    return {
        "send_id": uuid.uuid4().hex,
        "subscriber_id": subscriber_id,
        "campaign_id": campaign_id,
        "step_id": step_id,
        "variant_id": variant_id,
        "kind": kind,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "content_version": content_version,
        "episode": episode,
    }


def plan(conn: Connection, rows: list[dict[str, object]]) -> None:
    """(none) → ``pending``: one ``INSERT … SELECT`` for the whole batch (rows from
    :func:`new_row`); a row whose (subscriber, campaign, step, episode) already exists is left
    alone, which makes planning idempotent."""
    if not rows:
        return
    columns = [sends.c[name] for name in rows[0]]
    source = rows_table(conn, columns, ([r[c.name] for c in columns] for r in rows), "planned")
    # WHERE: SQLite reads "SELECT … ON CONFLICT" ambiguously without one.
    stmt = (
        dialect_insert(conn, sends)
        .from_select([c.name for c in columns], select(*source.c).where(true()))
        .on_conflict_do_nothing(
            index_elements=[
                sends.c.subscriber_id,
                sends.c.campaign_id,
                sends.c.step_id,
                sends.c.episode,
            ]
        )
    )
    conn.execute(stmt)


def recover_expired(conn: Connection, now: datetime) -> tuple[int, int]:
    """Leases that ran out: ``claimed`` → ``pending`` (it never reached the transport) and
    ``sending`` → ``unknown`` (it may have left). Returns (released, unknown)."""
    released = conn.execute(
        update(sends)
        .where(in_states(CLAIMED), sends.c.lease_until < now)
        .values(status=PENDING, lease_until=None)
    ).rowcount
    unknown = conn.execute(
        update(sends)
        .where(in_states(SENDING), sends.c.lease_until < now)
        .values(
            status=UNKNOWN,
            error="the sending process stopped after the request left",
            next_attempt_at=now + RECONCILE_WINDOW,
        )
    ).rowcount
    return int(released or 0), int(unknown or 0)


def claim(conn: Connection, ids: Sequence[int], lease_until: datetime) -> None:
    """``pending``/``retry`` → ``claimed`` with a lease; counts the attempt."""
    _update_ids(
        conn,
        ids,
        _READY,
        status=CLAIMED,
        lease_until=lease_until,
        attempts=sends.c.attempts + 1,
    )


def cancel(conn: Connection, ids: Sequence[int], reason: str) -> None:
    """``pending``/``retry`` → ``cancelled``: consent or suppression failed at claim time."""
    _update_ids(conn, ids, _READY, status=CANCELLED, error=reason)


def unclaim(conn: Connection, ids: Sequence[int], *, due: datetime | None = None) -> None:
    """``claimed`` → ``pending`` as if never claimed (the attempt is not counted), optionally
    due later (a window that closed before the send)."""
    values: dict[str, Any] = {
        "status": PENDING,
        "lease_until": None,
        "attempts": sends.c.attempts - 1,
    }
    if due is not None:
        values["next_attempt_at"] = due
    _update_ids(conn, ids, in_states(CLAIMED), **values)


def release(conn: Connection, ids: Sequence[int], *, error: str | None) -> int:
    """``sending``/``claimed`` → ``pending`` as if never claimed: the provider refused the
    account or configuration, so nothing left (the attempt is not counted). Returns how many."""
    return _update_ids(
        conn,
        ids,
        in_states(SENDING, CLAIMED),
        status=PENDING,
        lease_until=None,
        attempts=func.max(sends.c.attempts - 1, 0)
        if conn.dialect.name == "sqlite"
        else func.greatest(sends.c.attempts - 1, 0),
        error=error,
    )


def start_sending(
    conn: Connection, ids: Sequence[int], *, lease_until: datetime, transport: str
) -> None:
    """``claimed`` → ``sending``, committed just before the request leaves."""
    _update_ids(
        conn,
        ids,
        in_states(CLAIMED),
        status=SENDING,
        lease_until=lease_until,
        transport=transport,
    )


def count_toward_cap(conn: Connection, which: ColumnElement[bool], at: datetime) -> None:
    """The weekly cap moves when the provider accepts a campaign email: the people owning the
    campaign rows ``which`` selects had their last campaign email at ``at`` (never earlier
    than a later acceptance already recorded)."""
    owners = select(sends.c.subscriber_id).where(which, sends.c.kind == CAMPAIGN)
    conn.execute(
        update(subscribers)
        .where(
            subscribers.c.id.in_(owners),
            or_(
                subscribers.c.last_campaign_send_at.is_(None),
                subscribers.c.last_campaign_send_at < at,
            ),
        )
        .values(last_campaign_send_at=at)
    )


def mark_sent(
    conn: Connection, ids: Sequence[int], *, at: datetime, provider_message_id: str | None
) -> None:
    """``sending`` → ``sent``: the provider accepted these emails at ``at``."""
    if not ids:
        return
    count_toward_cap(conn, in_values(conn, sends.c.id, ids), at)
    _update_ids(
        conn,
        ids,
        None,
        status=SENT,
        sent_at=at,
        provider_message_id=provider_message_id,
        error=None,
        lease_until=None,
    )


def mark_retry(conn: Connection, ids: Sequence[int], *, due: datetime, error: str | None) -> None:
    """``sending`` → ``retry``: a temporary refusal; claimable again at ``due``."""
    _update_ids(conn, ids, None, status=RETRY, error=error, lease_until=None, next_attempt_at=due)


def mark_failed(conn: Connection, ids: Sequence[int], *, error: str | None) -> None:
    """``sending`` (or ``claimed``, a render failure) → ``failed`` for good."""
    _update_ids(conn, ids, None, status=FAILED, error=error, lease_until=None)


def mark_unknown(conn: Connection, ids: Sequence[int], *, now: datetime, error: str | None) -> None:
    """``sending`` → ``unknown``: the request left without an answer; settled by a provider
    event, or sent again after :data:`RECONCILE_WINDOW`."""
    _update_ids(
        conn,
        ids,
        None,
        status=UNKNOWN,
        error=error,
        lease_until=None,
        next_attempt_at=now + RECONCILE_WINDOW,
    )


def settle_unknown(
    conn: Connection, now: datetime, proof: Callable[[ColumnElement[Any]], ColumnElement[bool]]
) -> tuple[int, int]:
    """``unknown`` rows proven accepted (a provider event names them) → ``sent``; those
    without proof whose window ran out → ``pending``. Returns (settled, released).

    ``proof`` builds, from the ledger's ``send_id`` column, the condition that an event names
    the row (the events live above the ledger, so the caller writes it)."""
    proven = proof(sends.c.send_id)
    # Almost every tick has no unknown row: one look through ix_sends_unknown instead of the
    # three statements below (a third of an idle tick's database time on PostgreSQL).
    if conn.execute(select(sends.c.id).where(in_states(UNKNOWN)).limit(1)).first() is None:
        return 0, 0
    # Accepted at some moment before now: counting it from now only ever waits longer.
    count_toward_cap(conn, in_states(UNKNOWN) & proven, now)
    settled = conn.execute(
        update(sends).where(in_states(UNKNOWN), proven).values(status=SENT, sent_at=now, error=None)
    ).rowcount
    released = conn.execute(
        update(sends)
        .where(in_states(UNKNOWN), sends.c.next_attempt_at <= now, ~proven)
        .values(
            status=PENDING,
            next_attempt_at=now,
            error="re-sent: no provider event within the reconciliation window",
        )
    ).rowcount
    return int(settled or 0), int(released or 0)


def cancel_campaign(conn: Connection, campaign_id: str, reason: str) -> int:
    """Every not-yet-sent row of one campaign → ``cancelled`` (a broadcast was cancelled).
    Claimed rows have not reached the transport either: dispatch only sends rows it still finds
    claimed."""
    result = conn.execute(
        update(sends)
        .where(sends.c.campaign_id == campaign_id, in_states(PENDING, RETRY, CLAIMED))
        .values(status=CANCELLED, error=reason)
    )
    return int(result.rowcount or 0)


def cancel_steps(
    conn: Connection, subscriber_id: int, campaign_id: str, step_ids: Sequence[str], reason: str
) -> int:
    """One person's not-yet-claimed rows of these steps → ``cancelled`` (their goal arrived
    while a booking email waited, e.g. for a retry); returns how many."""
    if not step_ids:
        return 0
    result = conn.execute(
        update(sends)
        .where(
            sends.c.subscriber_id == subscriber_id,
            sends.c.campaign_id == campaign_id,
            sends.c.step_id.in_(list(step_ids)),
            _READY,
        )
        .values(status=CANCELLED, error=reason)
    )
    return max(int(result.rowcount or 0), 0)


def hold_campaign(conn: Connection, now: datetime, until: datetime) -> int:
    """Campaign rows due by ``now`` wait until ``until`` (the complaint pause); system email
    is untouched. Returns how many were held."""
    result = conn.execute(
        update(sends)
        .where(_READY, sends.c.next_attempt_at <= now, sends.c.kind == CAMPAIGN)
        .values(next_attempt_at=until)
    )
    return max(int(result.rowcount or 0), 0)


def retire_confirmation(conn: Connection, subscriber_id: int) -> None:
    """Someone who unsubscribed and signs up again needs a new confirmation email, but the
    ledger key (subscriber, "_system", "confirm") is taken by the first one. That row is kept
    as history under "confirm~N" (N = 1, 2 … oldest first), so the new one can take the key;
    if it never went out it is cancelled, since the new email replaces it."""
    old = conn.execute(
        select(sends.c.id, sends.c.status).where(
            sends.c.subscriber_id == subscriber_id,
            sends.c.campaign_id == SYSTEM_CAMPAIGN,
            sends.c.step_id == CONFIRM,
        )
    ).first()
    if old is None:
        return
    earlier = conn.execute(
        select(func.count()).where(
            sends.c.subscriber_id == subscriber_id,
            sends.c.campaign_id == SYSTEM_CAMPAIGN,
            sends.c.step_id.like(f"{CONFIRM}~%"),
        )
    ).scalar_one()
    values: dict[str, object] = {"step_id": f"{CONFIRM}~{earlier + 1}"}
    if old.status in (PENDING, RETRY, CLAIMED, UNKNOWN):  # never resent: the new one replaces it
        values.update(status=CANCELLED, error="replaced by a newer confirmation email")
    conn.execute(update(sends).where(sends.c.id == old.id).values(**values))


# -- operator levers (``clinicmail sends …``) --------------------------------------------------
def rows_in(conn: Connection, status: Status, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Rows in ``status`` (``failed`` or ``unknown``), newest first: opaque ids, no address."""
    c = sends.c
    found = conn.execute(
        select(
            c.id,
            c.send_id,
            c.subscriber_id,
            c.campaign_id,
            c.step_id,
            c.kind,
            c.status,
            c.attempts,
            c.next_attempt_at,
            c.error,
        )
        .where(in_states(status))
        .order_by(c.next_attempt_at.desc(), c.id.desc())
        .limit(limit)
    ).mappings()
    return [dict(r) for r in found]


def failed_since(conn: Connection, since: datetime) -> list[int]:
    """Ids of ``failed`` rows planned at or after ``since``."""
    return list(
        conn.execute(
            select(sends.c.id).where(in_states(FAILED), sends.c.created_at >= since)
        ).scalars()
    )


def statuses(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    """Row id → (status, subscriber id) for the rows ``ids`` that exist."""
    if not ids:
        return {}
    rows = conn.execute(
        select(sends.c.id, sends.c.status, sends.c.subscriber_id).where(
            in_values(conn, sends.c.id, ids)
        )
    ).all()
    return {r[0]: (str(r[1]), int(r[2])) for r in rows}


def retry_failed(conn: Connection, ids: Sequence[int], now: datetime) -> int:
    """``failed`` → ``pending``, due now with a fresh count of attempts (an operator's retry;
    consent and suppression are checked again when it is claimed)."""
    return _update_ids(
        conn,
        ids,
        in_states(FAILED),
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        error="retried by an operator",
    )


def resolve_unknown(conn: Connection, ids: Sequence[int], now: datetime, *, sent: bool) -> int:
    """``unknown`` settled by a person who checked the relay's log: ``sent`` (the cap moves,
    counted from now) or ``pending`` to go again now."""
    if sent:
        count_toward_cap(conn, in_values(conn, sends.c.id, ids) & in_states(UNKNOWN), now)
        return _update_ids(
            conn, ids, in_states(UNKNOWN), status=SENT, sent_at=now, error=None, lease_until=None
        )
    return _update_ids(
        conn,
        ids,
        in_states(UNKNOWN),
        status=PENDING,
        next_attempt_at=now,
        error="re-sent by an operator",
    )


def retry_now(conn: Connection, now: datetime) -> int:
    """Every ``retry`` row due now (``clinicmail transport reset`` clears the back-off of each
    send as well as the transport's)."""
    result = conn.execute(
        update(sends)
        .where(in_states(RETRY), sends.c.next_attempt_at > now)
        .values(next_attempt_at=now)
    )
    return int(result.rowcount or 0)
