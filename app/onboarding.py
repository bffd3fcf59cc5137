"""What happens when people become confirmed (import, double opt-in) or change symptoms.

Red-flag safety routing: a subscriber with any red-flag code is never enrolled in an educational
drip; once confirmed (imported with consent, or through the double opt-in link) they get one
safety email at once (system mail ignores the send window) and staff are alerted. Everyone else
is enrolled in the campaigns their symptoms select.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select

from campaigns import enrollment, ledger, ledger_reads
from campaigns.cadence import Cadence
from campaigns.ledger import SYSTEM, SYSTEM_CAMPAIGN
from campaigns.loader import Catalog
from engagement import followups
from engagement.sunset import Dormant
from outgoing import events as outgoing_events
from subscribers import store
from subscribers.signup import Confirmation
from subscribers.tables import subscribers
from templates.system import CHECKIN_FOLLOWUP, CHECKIN_STAFF, CONFIRM, SAFETY, STAFF_ALERT

# The confirmation email's variant for a signup that ticked warning signs (see on_signup).
URGENT = "urgent"


def on_confirmed(
    conn: Connection,
    catalog: Catalog,
    ids: list[int],
    now: datetime,
    *,
    staff_email: str | None,
    followup: followups.Policy | None = None,
) -> None:
    confirmed(
        conn,
        catalog,
        store.profiles(conn, ids).values(),
        now,
        staff_email=staff_email,
        followup=followup,
    )


def confirmed(
    conn: Connection,
    catalog: Catalog,
    people: Iterable[store.Profile],
    now: datetime,
    *,
    staff_email: str | None,
    followup: followups.Policy | None = None,
) -> None:
    """:func:`on_confirmed` for profiles the caller already holds (the CSV import builds the
    profiles of the people it has just written rather than reading them back). ``followup``:
    the clinic's follow-up policy; a red-flag person then gets a follow-up to close."""
    calm = []
    for person in people:
        if person.status != store.CONFIRMED:
            continue
        if person.red_flag:
            enrollment.leave_all(conn, person.id, now)
            queue_safety(conn, person.id, now, staff_email=staff_email)
            if followup is not None:
                followups.open_for_red_flag(conn, followup, person.id, person.symptoms, now)
        else:
            calm.append(person)
    enrollment.enroll(conn, catalog, calm, now)


def on_new_episode(
    conn: Connection,
    catalog: Catalog,
    subscriber_id: int,
    now: datetime,
    *,
    staff_email: str | None,
) -> enrollment.Reentry:
    """The person reports a new episode of pain (the preference centre, or the API), after
    saving the symptoms of this episode: every series they finished or left whose campaign
    allows it starts again from week 1 (:func:`campaigns.enrollment.reenter`), and any series
    their new symptoms select for the first time is entered as on confirmation. Warning signs
    route them to the safety email instead, as always; an unconfirmed or unsubscribed person
    starts nothing."""
    person = store.profiles(conn, [subscriber_id]).get(subscriber_id)
    if person is None or person.status != store.CONFIRMED:
        return enrollment.Reentry()
    again = (
        enrollment.Reentry() if person.red_flag else enrollment.reenter(conn, catalog, person, now)
    )
    confirmed(conn, catalog, [person], now, staff_email=staff_email)
    return again


def on_signup(conn: Connection, confirmation: Confirmation, now: datetime) -> None:
    """A web signup gets its confirmation email, and nothing else until it is confirmed: the
    address may not belong to whoever typed it. Warning signs ticked make it the ``urgent``
    variant, which carries a short, general urgent-care note (the signup page showed the advice
    at once); the safety email and the staff alert follow the confirmation (:func:`on_confirmed`).

    A held request (an address we already had) gets its own step, ``confirm:<request id>``,
    whose link names that request."""
    sid = confirmation.subscriber_id
    variant = URGENT if confirmation.urgent else "default"
    if confirmation.held is None:
        ledger.retire_confirmation(conn, sid)
        _queue_system(conn, sid, CONFIRM, now, variant=variant)
    else:
        _queue_system(conn, sid, f"{CONFIRM}:{confirmation.held}", now, variant=variant)


def queue_safety(
    conn: Connection, subscriber_id: int, now: datetime, *, staff_email: str | None
) -> None:
    """One safety email per person, ever (the ledger's unique key makes this idempotent), and
    one ``subscriber.red_flag`` webhook event."""
    _queue_system(conn, subscriber_id, SAFETY, now)
    _emit(conn, outgoing_events.RED_FLAG, subscriber_id, now, once_key="red-flag")
    if staff_email:
        _queue_system(conn, subscriber_id, STAFF_ALERT, now)


def queue_checkin_followup(
    conn: Connection,
    subscriber_id: int,
    send_id: str,
    now: datetime,
    *,
    staff_email: str | None,
    followup: followups.Policy | None = None,
) -> None:
    """A check-in answered "worse": at once, an invitation to book an assessment and (when
    CLINICMAIL_STAFF_EMAIL is set) a notice to staff that links to the record only, and a
    follow-up for staff to close (``followup``: the clinic's policy).

    The step id names the answered email ("checkin-followup:<send_id>"), so the ledger's unique
    key makes this once per answered email however often the answer changes."""
    _queue_system(conn, subscriber_id, f"{CHECKIN_FOLLOWUP}:{send_id}", now)
    _emit(
        conn, outgoing_events.CHECKIN_WORSE, subscriber_id, now, once_key=send_id, send_id=send_id
    )
    if staff_email:
        _queue_system(conn, subscriber_id, f"{CHECKIN_STAFF}:{send_id}", now)
    if followup is not None:
        answered = ledger_reads.step_of(conn, send_id)
        if answered is not None:
            followups.open_for_checkin(
                conn, followup, subscriber_id, send_id, answered[0], answered[1], now
            )


def queue_reengagement(
    conn: Connection, people: list[Dormant], now: datetime, times: Cadence
) -> None:
    """The sunset policy's one "still want these?" email per dormant person and cycle. Not
    urgent, so unlike other system email it waits for the person's local send window."""
    rows = []
    for p in people:
        row = ledger.new_row(
            subscriber_id=p.subscriber_id,
            campaign_id=SYSTEM_CAMPAIGN,
            step_id=p.step_id,
            variant_id="default",
            kind=SYSTEM,
            now=now,
        )
        if not times.is_open(now, p.timezone):
            row["next_attempt_at"] = times.next_open(now, p.timezone)
        rows.append(row)
    ledger.plan(conn, rows)


def _emit(
    conn: Connection,
    event_type: str,
    subscriber_id: int,
    now: datetime,
    *,
    once_key: str,
    **data: str,
) -> None:
    """A webhook event about one person, named by their opaque id only, once per ``once_key``."""
    public_id = conn.execute(
        select(subscribers.c.public_id).where(subscribers.c.id == subscriber_id)
    ).scalar_one_or_none()
    if public_id is not None:
        outgoing_events.emit(
            conn,
            event_type,
            {"subscriber_id": public_id, **data},
            now,
            once_key=f"{public_id}:{once_key}",
        )


def _queue_system(
    conn: Connection, subscriber_id: int, step_id: str, now: datetime, *, variant: str = "default"
) -> None:
    ledger.plan(
        conn,
        [
            ledger.new_row(
                subscriber_id=subscriber_id,
                campaign_id=SYSTEM_CAMPAIGN,
                step_id=step_id,
                variant_id=variant,
                kind=SYSTEM,
                now=now,
            )
        ],
    )
