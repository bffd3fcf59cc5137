"""Signups for addresses we already hold, kept apart until the owner of the address confirms.

A stranger who types someone else's address into the signup form must not be able to change
anything about that person: not their name or symptoms, not their consent record, and not make
us send them a safety email or alert staff. So a signup for an address already held (unconfirmed,
confirmed or unsubscribed) is stored here, untouched, and the address gets a confirmation email
whose link names this request. Only a POST to that link (:func:`apply`) changes the person, as
the request asked; a request nobody confirms expires with its link (:func:`expire`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select

from storage.sql import dialect_insert
from subscribers import store
from subscribers.tables import signup_requests
from subscribers.tokens import CONFIRM_MAX_AGE

# What a confirmation token carries for a held request: this prefix and the request's public
# id (a subscriber's own public id is plain hex, so the two never collide).
SUBJECT_PREFIX = "held."
TTL = timedelta(seconds=CONFIRM_MAX_AGE)


@dataclass(frozen=True)
class Held:
    """One held request, as asked."""

    subscriber_id: int
    first_name: str | None
    timezone: str | None
    symptoms: frozenset[str]
    ip: str | None
    user_agent: str | None
    created_at: datetime


def token_subject(public_id: str) -> str:
    """What the confirmation link's signed token carries for the held request ``public_id``."""
    return SUBJECT_PREFIX + public_id


def request_id(subject: str) -> str | None:
    """The held request's public id inside a token subject, or None for a subscriber's own."""
    return subject.removeprefix(SUBJECT_PREFIX) if subject.startswith(SUBJECT_PREFIX) else None


def fingerprint(first_name: str | None, timezone: str | None, symptoms: Sequence[str]) -> str:
    parts = (first_name or "", timezone or "", ";".join(sorted(symptoms)))
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def hold(
    conn: Connection,
    subscriber_id: int,
    *,
    first_name: str | None,
    timezone: str | None,
    symptoms: Sequence[str],
    ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> str | None:
    """Keep a request apart; returns its public id, or None when the same request is already
    held for this person (one confirmation email per distinct request, however often it is
    posted)."""
    public_id = store.new_public_id()
    stmt = (
        dialect_insert(conn, signup_requests)
        .values(
            public_id=public_id,
            subscriber_id=subscriber_id,
            fingerprint=fingerprint(first_name, timezone, symptoms),
            first_name=first_name,
            timezone=timezone,
            symptoms=";".join(sorted(symptoms)),
            ip=ip,
            user_agent=user_agent,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(signup_requests.c.id)
    )
    return public_id if conn.execute(stmt).first() is not None else None


def take(conn: Connection, public_id: str, now: datetime) -> Held | None:
    """Remove and return the held request ``public_id`` (None if unknown or expired)."""
    row = conn.execute(
        delete(signup_requests)
        .where(signup_requests.c.public_id == public_id)
        .returning(*signup_requests.c)
    ).first()
    if row is None or row.created_at < now - TTL:
        return None
    return Held(
        subscriber_id=row.subscriber_id,
        first_name=row.first_name,
        timezone=row.timezone,
        symptoms=frozenset(c for c in row.symptoms.split(";") if c),
        ip=row.ip,
        user_agent=row.user_agent,
        created_at=row.created_at,
    )


def is_waiting(conn: Connection, public_id: str, now: datetime) -> bool:
    """Is the held request ``public_id`` still there to be confirmed?"""
    created = conn.execute(
        select(signup_requests.c.created_at).where(signup_requests.c.public_id == public_id)
    ).scalar_one_or_none()
    return created is not None and created >= now - TTL


def expire(conn: Connection, now: datetime) -> int:
    """Forget requests nobody confirmed while their link was valid; returns how many."""
    result = conn.execute(delete(signup_requests).where(signup_requests.c.created_at < now - TTL))
    return int(result.rowcount or 0)
