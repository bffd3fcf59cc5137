"""Apply stored events that have not been applied yet (docs/architecture.md, invariant 6: store, then process).

What each kind does:

==============  ===========================================================================
bounced hard    suppress the address (reason ``bounce``)
bounced soft    counted; the address is suppressed after :data:`SOFT_BOUNCE_LIMIT` soft bounces
                with no delivery in between
dropped         suppress the address (reason ``dropped``)
complained      suppress (reason ``complaint``) and unsubscribe: a spam report withdraws consent
unsubscribed    unsubscribe and leave every campaign
opened/clicked  human ones become activity facts of their (person, campaign, step), which
                segment rules (``clicked:``/``opened:``) and branching read; machine opens
                (see :func:`engagement.events.is_machine_open`) and link-scanner clicks
                (within :data:`SCANNER_SECONDS` of the send's delivery) are stored, marked
                ``machine`` and never counted
others          recorded only (``resubscribed`` never re-subscribes: consent comes only through
                our own double opt-in)
==============  ===========================================================================

After a batch with spam reports the day's complaint rate is checked at once
(:mod:`engagement.complaints`), so an automatic pause does not wait for housekeeping.

Every action is idempotent, so applying an event twice (two processes racing on SQLite, a crash
between the action and ``applied_at``) does no harm; on PostgreSQL rows are claimed with
``FOR UPDATE SKIP LOCKED`` so concurrent appliers split the work instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update

from campaigns import enrollment, ledger_reads
from engagement import complaints
from engagement.events import SOFT, Kind
from engagement.tables import email_events
from outgoing import events as outgoing_events
from subscribers import activity, store
from subscribers.addresses import address_hash
from subscribers.tables import subscribers

SOFT_BOUNCE_LIMIT = 3
BATCH = 500
# Mail security gateways (Safe Links, Mimecast, Proofpoint…) follow every link of a message
# within a second or two of receiving it; a person needs longer to get the notification, open
# the email and click. A click this close to the send's delivery (or, before the delivery event
# is known, to the moment our transport handed it over) is a scanner's.
SCANNER_SECONDS = 10

ConnFactory = Callable[[], AbstractContextManager[Connection]]

log = logging.getLogger("clinicmail.engagement")


def applier(
    conn_factory: ConnFactory,
    clock: Callable[[], datetime],
    apply: Callable[[], object] | None = None,
) -> Callable[[], None]:
    """What the webhook and the tracking routes run after a response that stored events: apply
    the pending events now (or ``apply``, a composition root's own). Never raises: the next tick
    applies them anyway, and a failure must not crash the server. Coalesced (:class:`Coalesced`)
    so a burst of responses runs one applier, not one per response."""

    def apply_once() -> None:
        try:
            if apply is not None:
                apply()
            else:
                apply_pending(conn_factory, clock())
        except Exception as exc:
            log.error("applying stored events failed: %s", type(exc).__name__)

    return Coalesced(apply_once)


class Coalesced:
    """Runs ``work`` in at most one thread of this process at a time. A call while it runs
    makes the running one go round once more instead of starting a second: under a burst of
    batches one applier drains the queue while the rest of the threads keep accepting posts,
    rather than a hundred appliers queueing for the same rows (and, on SQLite, the one lock)."""

    def __init__(self, work: Callable[[], object]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._again = threading.Event()

    def __call__(self) -> None:
        self._again.set()
        while self._again.is_set():
            if not self._lock.acquire(blocking=False):
                return  # the running one sees the flag and goes round again
            try:
                self._again.clear()
                self._work()
            finally:
                self._lock.release()


def apply_pending(conn_factory: ConnFactory, now: datetime, *, limit: int | None = None) -> int:
    """Apply every unapplied event (oldest first) in short batches; return how many were applied."""
    applied = 0
    while limit is None or applied < limit:
        size = BATCH if limit is None else min(BATCH, limit - applied)
        with conn_factory() as conn:
            done = _apply_batch(conn, now, size)
        applied += done
        if done < size:
            break
    return applied


def _apply_batch(conn: Connection, now: datetime, size: int) -> int:
    query = (
        select(
            email_events.c.id,
            email_events.c.kind,
            email_events.c.payload,
            email_events.c.bounce_class,
            email_events.c.email_hash,
            email_events.c.send_id,
            email_events.c.machine,
            email_events.c.occurred_at,
        )
        .where(email_events.c.applied_at.is_(None))
        .order_by(email_events.c.id)
        .limit(size)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if not rows:
        return 0
    human = [r for r in rows if r.kind in _ENGAGEMENT and not r.machine]
    scanned = _scanner_clicks(conn, [r for r in human if r.kind == Kind.CLICKED])
    if scanned:
        conn.execute(
            update(email_events).where(email_events.c.id.in_(scanned)).values(machine=True)
        )
    _record_engagement(conn, [r for r in human if r.id not in scanned], now)
    # per address, in event order; addresses in one global order (see _record_engagement)
    for row in sorted(rows, key=lambda r: (r.email_hash or "", r.id)):
        _apply_one(conn, row.kind, row.payload, row.bounce_class, row.email_hash, row.id, now)
    conn.execute(
        update(email_events)
        .where(email_events.c.id.in_([r.id for r in rows]))
        .values(applied_at=now)
    )
    if any(r.kind == Kind.COMPLAINED for r in rows):
        complaints.evaluate(conn, now)
    return len(rows)


def _scanner_clicks(conn: Connection, clicks: list[Any]) -> set[int]:
    """Ids of the click events that came too soon after their send's delivery to be human."""
    clicks = [c for c in clicks if c.send_id and c.occurred_at is not None]
    if not clicks:
        return set()
    send_ids = {c.send_id for c in clicks}
    handed_over = ledger_reads.handed_over_at(conn, send_ids)
    e = email_events.c
    delivered: dict[str, datetime] = {
        sid: at
        for sid, at in conn.execute(
            select(e.send_id, func.max(e.occurred_at))
            .where(e.send_id.in_(send_ids), e.kind == Kind.DELIVERED)
            .group_by(e.send_id)
        )
        if at is not None
    }
    window = timedelta(seconds=SCANNER_SECONDS)
    machine: set[int] = set()
    for c in clicks:
        known = [t for t in (handed_over.get(c.send_id), delivered.get(c.send_id)) if t]
        # A click long *before* the send (clock trouble, or test data) proves nothing either way.
        if known and abs(c.occurred_at - max(known)) < window:
            machine.add(c.id)
    return machine


_ENGAGEMENT = {Kind.OPENED: activity.OPEN, Kind.CLICKED: activity.CLICK}


def _record_engagement(conn: Connection, rows: list[Any], now: datetime) -> None:
    """Human opens and clicks of campaign email become the person's activity facts."""
    send_ids = {r.send_id for r in rows if r.send_id}
    if not send_ids:
        return
    owners = ledger_reads.owners_of(conn, send_ids)
    facts = sorted(
        (o.subscriber_id, _ENGAGEMENT[r.kind], o.campaign_id, o.step_id, r.occurred_at or now)
        for r in rows
        if (o := owners.get(r.send_id)) is not None
    )
    # Sorted by the row they upsert: two appliers (a web process and a tick) touching the same
    # person's facts then lock those rows in the same order and never deadlock.
    for sid, kind, campaign_id, step_id, at in facts:
        activity.record(conn, sid, kind, at, campaign_id=campaign_id, step_id=step_id)


def _email_key(payload: str) -> str | None:
    value = orjson.loads(payload).get("email")
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _apply_one(
    conn: Connection,
    kind: str,
    payload: str,
    bounce_class: str | None,
    email_hash: str | None,
    event_id: int,
    now: datetime,
) -> None:
    if kind not in (Kind.BOUNCED, Kind.DROPPED, Kind.COMPLAINED, Kind.UNSUBSCRIBED):
        return
    key = _email_key(payload)
    if key is None:
        return
    if kind == Kind.BOUNCED:
        soft = bounce_class == SOFT
        if (
            soft
            and _soft_bounces(conn, email_hash or address_hash(key), event_id) < SOFT_BOUNCE_LIMIT
        ):
            return
        store.suppress(conn, key, "bounce", now)
    elif kind == Kind.DROPPED:
        store.suppress(conn, key, "dropped", now)
    elif kind == Kind.COMPLAINED:
        store.suppress(conn, key, "complaint", now)
        _complained(conn, key, event_id, now)
        _unsubscribe(conn, key, now, "sendgrid spam report")
    else:
        _unsubscribe(conn, key, now, "sendgrid unsubscribe")


def _complained(conn: Connection, key: str, event_id: int, now: datetime) -> None:
    """Receivers of the ``subscriber.complained`` webhook hear of it, once per stored event."""
    public_id = conn.execute(
        select(subscribers.c.public_id).where(subscribers.c.email_key == key)
    ).scalar_one_or_none()
    if public_id is not None:
        outgoing_events.emit(
            conn,
            outgoing_events.COMPLAINED,
            {"subscriber_id": public_id},
            now,
            once_key=f"email-event:{event_id}",
        )


def _unsubscribe(conn: Connection, key: str, now: datetime, source: str) -> None:
    sid = conn.execute(
        select(subscribers.c.id).where(subscribers.c.email_key == key)
    ).scalar_one_or_none()
    if sid is None:
        return
    store.unsubscribe(conn, sid, now, source)
    enrollment.leave_all(conn, sid, now)


def _soft_bounces(conn: Connection, email_hash: str, up_to_id: int) -> int:
    """Soft bounces for the address since its last delivery, counting this one."""
    last_delivery = (
        select(func.coalesce(func.max(email_events.c.id), 0))
        .where(email_events.c.email_hash == email_hash, email_events.c.kind == Kind.DELIVERED)
        .scalar_subquery()
    )
    return int(
        conn.execute(
            select(func.count()).where(
                email_events.c.email_hash == email_hash,
                email_events.c.kind == Kind.BOUNCED,
                email_events.c.bounce_class == SOFT,
                email_events.c.id > last_delivery,
                email_events.c.id <= up_to_id,
            )
        ).scalar_one()
    )
