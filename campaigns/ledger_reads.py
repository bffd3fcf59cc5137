"""Reading the send ledger: every question another module asks of ``sends``, each one named here.

The ledger (:mod:`campaigns.ledger`) owns the table and every transition of it; this module is
its read half, kept apart only so the state machine stays short. No other module imports the
``sends`` table (``tests/test_ledger_ownership.py`` checks it): a caller asks a question below
and gets plain values back. Each answer is one statement, however many ids it is asked about.

Where a caller combines the answer with its own tables in one statement (the sunset policy's
dormant people), the function returns the selectable rather than rows, so the statement stays
one. Where the statement must join a table that lives above the ledger (a tracked link; the
provider events that engagement's figures and the console's timeline count), the caller hands
that table in, with the expressions to compute over it, and the ledger chooses which sends take
part and how they are grouped (:data:`Grouping`). Status and kind predicates keep the ledger's own constants; the partial indexes are the
ledger's business and the queries here are the ones the callers ran before (the EXPLAIN test
``tests/test_tick_plans.py`` watches them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Row,
    RowMapping,
    Subquery,
    Table,
    and_,
    case,
    func,
    select,
)

from campaigns.ledger import (
    CAMPAIGN,
    CLAIMED,
    PENDING,
    RETRY,
    SENDING,
    SENT,
    UNKNOWN,
    ready_query,
    sends,
)
from subscribers.activity import CHECKIN
from subscribers.symptoms import SYMPTOMS
from subscribers.tables import subscriber_activity, subscriber_symptoms, subscribers

# A row of any width (SQLAlchemy types a Row by its columns).
AnyRow = Row[*tuple[Any, ...]]

__all__ = [
    "Grouping",
    "accepted_counts",
    "by_status",
    "by_status_of_campaign",
    "campaign_history_of",
    "campaign_received_since",
    "campaign_recipient",
    "campaign_send",
    "campaign_sent_of",
    "checkin_counts",
    "claimable",
    "dispatch_counts",
    "email_key_of",
    "event_counts",
    "events_about_emails_of",
    "handed_over_at",
    "link_recipient",
    "owners_of",
    "queued_for",
    "received_at_least",
    "rows_of",
    "send_ids_of",
    "send_ids_of_key",
    "sent_between",
    "step_of",
]


def claimable(
    conn: Connection, now: datetime, held: Sequence[tuple[str, str, str]], limit: int
) -> Sequence[AnyRow]:
    """Up to ``limit`` rows dispatch may claim now (:func:`campaigns.ledger.ready_query`: one
    email, oldest first, ``held`` emails skipped), each with its person: ``id, send_id,
    subscriber_id, campaign_id, step_id, variant_id, kind, attempts`` then ``email, email_key,
    first_name, public_id, person_status, red_flag, timezone`` (NULL when the person is gone: an
    outer join). On PostgreSQL the rows are locked, skipping those another worker holds."""
    ready = ready_query(conn, now, held)
    if ready is None:
        return []
    query = (
        ready.add_columns(
            subscribers.c.email,
            subscribers.c.email_key,
            subscribers.c.first_name,
            subscribers.c.public_id,
            subscribers.c.status.label("person_status"),
            subscribers.c.red_flag,
            subscribers.c.timezone,
        )
        .outerjoin(subscribers, subscribers.c.id == sends.c.subscriber_id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=sends)
    return conn.execute(query).all()


def dispatch_counts(conn: Connection) -> tuple[int, int, datetime | None]:
    """What the delivery status page shows beside the backlog: sends in the transport's hands
    (claimed or sending), sends whose outcome is unknown, and when the last one was accepted."""
    in_flight = conn.execute(
        select(func.count()).select_from(sends).where(sends.c.status.in_([CLAIMED, SENDING]))
    ).scalar_one()
    unknown = conn.execute(
        select(func.count()).select_from(sends).where(sends.c.status == UNKNOWN)
    ).scalar_one()
    last_sent = conn.execute(
        select(func.max(sends.c.sent_at)).where(sends.c.status == SENT)
    ).scalar_one()
    return int(in_flight), int(unknown), last_sent


def by_status(conn: Connection) -> list[tuple[str, int]]:
    """How many ledger rows are in each status (the metrics gauge)."""
    rows = conn.execute(select(sends.c.status, func.count()).group_by(sends.c.status)).all()
    return [(str(status), int(n)) for status, n in rows]


def by_status_of_campaign(conn: Connection, campaign_id: str) -> dict[str, int]:
    """How many of one campaign's sends are in each status (a broadcast's progress)."""
    return {
        str(status): int(n)
        for status, n in conn.execute(
            select(sends.c.status, func.count())
            .where(sends.c.campaign_id == campaign_id)
            .group_by(sends.c.status)
        ).all()
    }


def queued_for(conn: Connection, subscriber_id: int) -> Sequence[AnyRow]:
    """A person's emails planned but not yet handed over (pending, retry, claimed, sending),
    soonest first: ``campaign_id, step_id, variant_id, next_attempt_at``."""
    return conn.execute(
        select(sends.c.campaign_id, sends.c.step_id, sends.c.variant_id, sends.c.next_attempt_at)
        .where(
            sends.c.subscriber_id == subscriber_id,
            sends.c.status.in_([PENDING, RETRY, CLAIMED, SENDING]),
        )
        .order_by(sends.c.next_attempt_at)
    ).all()


def rows_of(conn: Connection, subscriber_id: int) -> list[RowMapping]:
    """A person's ledger for their data export, oldest first: what was sent when and from which
    stored content version, never the message itself."""
    cols = [
        sends.c.send_id,
        sends.c.campaign_id,
        sends.c.step_id,
        sends.c.episode,
        sends.c.variant_id,
        sends.c.content_version,
        sends.c.kind,
        sends.c.status,
        sends.c.created_at,
        sends.c.sent_at,
        sends.c.transport,
    ]
    return list(
        conn.execute(
            select(*cols).where(sends.c.subscriber_id == subscriber_id).order_by(sends.c.id)
        ).mappings()
    )


def send_ids_of_key(conn: Connection, email_key: str) -> list[str]:
    """The send ids of every email to the person with this address key."""
    return list(
        conn.execute(
            select(sends.c.send_id)
            .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
            .where(subscribers.c.email_key == email_key)
        ).scalars()
    )


def send_ids_of(conn: Connection, subscriber_ids: Sequence[int]) -> list[str]:
    """The send ids of every email to these people."""
    return list(
        conn.execute(
            select(sends.c.send_id).where(sends.c.subscriber_id.in_(subscriber_ids))
        ).scalars()
    )


def step_of(conn: Connection, send_id: str) -> tuple[str, str] | None:
    """The (campaign, step) an email belongs to, or None for an unknown send id."""
    row = conn.execute(
        select(sends.c.campaign_id, sends.c.step_id).where(sends.c.send_id == send_id)
    ).first()
    return None if row is None else (row[0], row[1])


def email_key_of(conn: Connection, send_id: str) -> str | None:
    """The address key of the person an email went to, or None when no send of a person still
    held has that id."""
    key: str | None = conn.execute(
        select(subscribers.c.email_key)
        .select_from(sends.join(subscribers, subscribers.c.id == sends.c.subscriber_id))
        .where(sends.c.send_id == send_id)
    ).scalar_one_or_none()
    return key


def campaign_send(conn: Connection, send_id: str) -> AnyRow | None:
    """A campaign email by its send id: ``subscriber_id, campaign_id, step_id, sent_at``; None
    for system email or an unknown id."""
    return conn.execute(
        select(sends.c.subscriber_id, sends.c.campaign_id, sends.c.step_id, sends.c.sent_at).where(
            sends.c.send_id == send_id, sends.c.kind == CAMPAIGN
        )
    ).first()


def campaign_recipient(conn: Connection, send_id: str) -> AnyRow | None:
    """When a campaign email was accepted and its recipient's address key (``sent_at,
    email_key``); None for system email, an unknown id or an erased person."""
    return conn.execute(
        select(sends.c.sent_at, subscribers.c.email_key)
        .select_from(sends.join(subscribers, subscribers.c.id == sends.c.subscriber_id))
        .where(sends.c.send_id == send_id, sends.c.kind == CAMPAIGN)
    ).first()


def link_recipient(conn: Connection, links: Table, link_row: int, send_id: str) -> AnyRow | None:
    """A tracked link of a campaign email with the email it was clicked in: ``url, sent_at,
    email_key``; None when the link does not belong to that email. ``links`` is the tracked-link
    table (``campaign_id, step_id, variant_id, url``), handed in because it lives above the
    ledger."""
    return conn.execute(
        select(links.c.url, sends.c.sent_at, subscribers.c.email_key)
        .select_from(
            links.join(
                sends,
                and_(
                    sends.c.campaign_id == links.c.campaign_id,
                    sends.c.step_id == links.c.step_id,
                    sends.c.variant_id == links.c.variant_id,
                ),
            ).join(subscribers, subscribers.c.id == sends.c.subscriber_id)
        )
        .where(links.c.id == link_row, sends.c.send_id == send_id, sends.c.kind == CAMPAIGN)
    ).first()


def handed_over_at(conn: Connection, send_ids: Iterable[str]) -> dict[str, datetime]:
    """When each of these emails was accepted by the provider (those not yet accepted are
    missing)."""
    return {
        sid: at
        for sid, at in conn.execute(
            select(sends.c.send_id, sends.c.sent_at).where(
                sends.c.send_id.in_(send_ids), sends.c.sent_at.is_not(None)
            )
        )
    }


def owners_of(conn: Connection, send_ids: Iterable[str]) -> dict[str, AnyRow]:
    """The campaign emails among ``send_ids``, by send id: ``send_id, subscriber_id,
    campaign_id, step_id`` (system email is left out)."""
    return {
        s.send_id: s
        for s in conn.execute(
            select(
                sends.c.send_id, sends.c.subscriber_id, sends.c.campaign_id, sends.c.step_id
            ).where(sends.c.send_id.in_(send_ids), sends.c.kind == CAMPAIGN)
        )
    }


def sent_between(conn: Connection, start: datetime, end: datetime) -> int:
    """How many emails (any kind) the provider accepted in ``[start, end)``."""
    return int(
        conn.execute(
            select(func.count()).where(
                sends.c.sent_at >= start, sends.c.sent_at < end, sends.c.status == SENT
            )
        ).scalar_one()
    )


def campaign_sent_of(conn: Connection, campaign_id: str) -> Sequence[AnyRow]:
    """Every accepted email of one campaign: ``subscriber_id, step_id, sent_at``."""
    return conn.execute(
        select(sends.c.subscriber_id, sends.c.step_id, sends.c.sent_at).where(
            sends.c.campaign_id == campaign_id,
            sends.c.kind == CAMPAIGN,
            sends.c.status == SENT,
            sends.c.sent_at.is_not(None),
        )
    ).all()


def campaign_history_of(conn: Connection, subscriber_id: int) -> Sequence[AnyRow]:
    """A person's campaign emails in the order they were planned: ``campaign_id, episode,
    step_id, status, created_at``."""
    s = sends.c
    return conn.execute(
        select(s.campaign_id, s.episode, s.step_id, s.status, s.created_at)
        .where(s.subscriber_id == subscriber_id, s.kind == CAMPAIGN)
        .order_by(s.id)
    ).all()


def campaign_received_since(conn: Connection, since: datetime) -> dict[int, int]:
    """How many campaign emails each person has had accepted after ``since``."""
    return {
        int(sid): int(n)
        for sid, n in conn.execute(
            select(sends.c.subscriber_id, func.count())
            .where(sends.c.kind == CAMPAIGN, sends.c.status == SENT, sends.c.sent_at > since)
            .group_by(sends.c.subscriber_id)
        )
    }


def received_at_least(since: datetime, min_sends: int) -> Subquery:
    """People with at least ``min_sends`` campaign emails accepted after ``since``, as a
    subquery (``subscriber_id, n``) for the caller to join in its own statement."""
    return (
        select(sends.c.subscriber_id, func.count().label("n"))
        .where(sends.c.kind == CAMPAIGN, sends.c.status == SENT, sends.c.sent_at > since)
        .group_by(sends.c.subscriber_id)
        .having(func.count() >= min_sends)
        .subquery()
    )


# -- engagement's figures: campaign sends joined with what came back ----------------------------
# ``clinicmail stats``, the dashboard's weekly series and the chart count campaign emails and what
# recipients did with them, in one statement each so the database does the counting. The ledger
# picks the sends (campaign email; accepted ones where it says so) and groups them; the caller
# hands in the events table and says what to count over it.

Grouping = Literal[
    "campaign_id", "step_id", "variant_id", "sent_day", "symptom_code", "symptom_group"
]
"""What campaign sends can be grouped by: the email's campaign, step or variant; the day (UTC) the
provider accepted it (None when it has not been); or the recipient's *current* symptom codes, one
by one or by their group (``"other"`` for a code no group lists). A person with two codes is in
each code's group, so the figures count distinct sends and events and a join cannot inflate them.
"""

_SYMPTOM_GROUP_OF = {symptom.code: symptom.group for symptom in SYMPTOMS}


def _dimensions(by: Sequence[Grouping]) -> tuple[list[ColumnElement[Any]], bool]:
    """The expressions for ``by``, and whether they need the recipient's symptom codes."""
    code = subscriber_symptoms.c.code
    columns: dict[str, ColumnElement[Any]] = {
        "campaign_id": sends.c.campaign_id,
        "step_id": sends.c.step_id,
        "variant_id": sends.c.variant_id,
        "sent_day": func.date(sends.c.sent_at),
        "symptom_code": code,
        "symptom_group": case(_SYMPTOM_GROUP_OF, value=code, else_="other"),
    }
    return [columns[name] for name in by], any(name.startswith("symptom_") for name in by)


def _grouped(clause: FromClause, symptoms: bool) -> FromClause:
    if not symptoms:
        return clause
    return clause.join(
        subscriber_symptoms, subscriber_symptoms.c.subscriber_id == sends.c.subscriber_id
    )


def accepted_counts(conn: Connection, by: Sequence[Grouping]) -> dict[tuple[Any, ...], int]:
    """How many campaign emails the provider accepted, grouped by ``by`` (each key a tuple in
    that order)."""
    dims, symptoms = _dimensions(by)
    return {
        tuple(row[:-1]): int(row[-1])
        for row in conn.execute(
            select(*dims, func.count(func.distinct(sends.c.id)))
            .select_from(_grouped(sends, symptoms))
            .where(sends.c.kind == CAMPAIGN, sends.c.status == SENT)
            .group_by(*dims)
        )
    }


def event_counts(
    conn: Connection,
    events: Table,
    counts: Sequence[ColumnElement[Any]],
    by: Sequence[Grouping],
    *,
    accepted_only: bool = False,
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """``counts`` (aggregates over ``events``, in that order) over the events about campaign
    emails, grouped by ``by``; ``accepted_only`` leaves out emails the provider has not accepted.
    ``events`` is the provider events table (a ``send_id`` column names the email), handed in
    because it lives above the ledger."""
    dims, symptoms = _dimensions(by)
    where = [sends.c.kind == CAMPAIGN]
    if accepted_only:
        where.append(sends.c.status == SENT)
    joined = events.join(sends, sends.c.send_id == events.c.send_id)
    return {
        tuple(row[: len(dims)]): tuple(int(value) for value in row[len(dims) :])
        for row in conn.execute(
            select(*dims, *counts)
            .select_from(_grouped(joined, symptoms))
            .where(*where)
            .group_by(*dims)
        )
    }


def checkin_counts(
    conn: Connection, answers: Sequence[str], by: Sequence[Grouping]
) -> dict[tuple[Any, ...], int]:
    """How many check-in answers among ``answers`` people gave to campaign emails (their latest
    answer per email, as ``subscriber_activity`` keeps it), keyed by ``(*by, answer)``."""
    dims, symptoms = _dimensions(by)
    a = subscriber_activity.c
    answered = subscriber_activity.join(
        sends,
        and_(
            sends.c.subscriber_id == a.subscriber_id,
            sends.c.campaign_id == a.campaign_id,
            sends.c.step_id == a.step_id,
        ),
    )
    return {
        tuple(row[:-1]): int(row[-1])
        for row in conn.execute(
            select(*dims, a.value, func.count(func.distinct(a.id)))
            .select_from(_grouped(answered, symptoms))
            .where(sends.c.kind == CAMPAIGN, a.kind == CHECKIN, a.value.in_(answers))
            .group_by(*dims, a.value)
        )
    }


def events_about_emails_of(
    conn: Connection,
    events: Table,
    columns: Sequence[ColumnElement[Any]],
    subscriber_id: int,
    order_by: Sequence[ColumnElement[Any]],
) -> Sequence[AnyRow]:
    """The events about every email sent to one person (any kind): ``columns`` of ``events``,
    then the email's ``campaign_id`` and ``step_id``, in ``order_by``. ``events`` is the provider
    events table (a ``send_id`` column names the email), handed in because it lives above the
    ledger."""
    return conn.execute(
        select(*columns, sends.c.campaign_id, sends.c.step_id)
        .select_from(events.join(sends, sends.c.send_id == events.c.send_id))
        .where(sends.c.subscriber_id == subscriber_id)
        .order_by(*order_by)
    ).all()
