"""Reads and writes of subscriber rows. Every function takes an open connection (the caller owns
the transaction) so several changes can commit together."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from outgoing import events as outgoing_events
from storage.bulk import in_values
from storage.keys import suppression_hash, suppression_hasher
from storage.sql import dialect_insert
from subscribers.activity import NOTHING, Activity, activity_of
from subscribers.addresses import address_hash
from subscribers.segments import Facts
from subscribers.symptoms import arm_and_leg, has_red_flag
from subscribers.tables import (
    SCHEME_HMAC,
    SCHEME_SHA256,
    consent_events,
    subscriber_symptoms,
    subscribers,
    suppressions,
)

CONFIRMED = "confirmed"
UNCONFIRMED = "unconfirmed"
UNSUBSCRIBED = "unsubscribed"

EMAIL_PURPOSE = "email_education"
HEALTH_PURPOSE = "health_data"


@dataclass(frozen=True)
class Profile:
    """Plain data about one subscriber, safe to hand to templates and rules."""

    id: int
    public_id: str
    email: str
    first_name: str | None
    timezone: str | None
    status: str
    red_flag: bool
    symptoms: frozenset[str]
    confirmed_at: datetime | None
    paused_until: datetime | None
    last_campaign_send_at: datetime | None
    activity: Activity = NOTHING

    @property
    def arm_and_leg(self) -> bool:
        """Arm (or neck) and leg symptoms together: the console flags the person for staff to
        review. Derived from the symptoms, so it is raised at signup, import or any change of
        symptoms, and lifted when the combination goes."""
        return arm_and_leg(self.symptoms)

    def facts(self, now: datetime) -> Facts:
        days = (now - self.confirmed_at).days if self.confirmed_at else 0
        return Facts(
            symptoms=self.symptoms,
            timezone=self.timezone,
            subscribed_days=max(days, 0),
            activity=self.activity,
        )


def new_public_id() -> str:
    return secrets.token_hex(16)


def symptoms_of(conn: Connection, ids: Iterable[int]) -> dict[int, frozenset[str]]:
    ids = list(ids)
    out: dict[int, set[str]] = {i: set() for i in ids}
    if ids:
        rows = conn.execute(
            select(subscriber_symptoms.c.subscriber_id, subscriber_symptoms.c.code).where(
                in_values(conn, subscriber_symptoms.c.subscriber_id, ids)
            )
        )
        for sid, code in rows:
            out[sid].add(code)
    return {k: frozenset(v) for k, v in out.items()}


# What a Profile holds: reading only these skips five columns (three timestamps) per person.
_PROFILE = (
    subscribers.c.id,
    subscribers.c.public_id,
    subscribers.c.email,
    subscribers.c.first_name,
    subscribers.c.timezone,
    subscribers.c.status,
    subscribers.c.red_flag,
    subscribers.c.confirmed_at,
    subscribers.c.paused_until,
    subscribers.c.last_campaign_send_at,
)


def profiles(conn: Connection, ids: Iterable[int]) -> dict[int, Profile]:
    ids = list(ids)
    if not ids:
        return {}
    syms = symptoms_of(conn, ids)
    acts = activity_of(conn, ids)
    rows = conn.execute(select(*_PROFILE).where(in_values(conn, subscribers.c.id, ids)))
    # Rows unpacked as tuples, in _PROFILE's order: named access per column showed in profiles
    # of a planning batch (a thousand people each).
    return {
        sid: Profile(
            id=sid,
            public_id=public_id,
            email=email,
            first_name=first_name,
            timezone=timezone,
            status=status,
            red_flag=red_flag,
            symptoms=syms.get(sid, frozenset()),
            confirmed_at=confirmed_at,
            paused_until=paused_until,
            last_campaign_send_at=last_campaign_send_at,
            activity=acts.get(sid, NOTHING),
        )
        for (
            sid,
            public_id,
            email,
            first_name,
            timezone,
            status,
            red_flag,
            confirmed_at,
            paused_until,
            last_campaign_send_at,
        ) in rows
    }


def by_public_id(conn: Connection, public_id: str) -> int | None:
    return conn.execute(
        select(subscribers.c.id).where(subscribers.c.public_id == public_id)
    ).scalar_one_or_none()


def profile_by_public_id(conn: Connection, public_id: str) -> Profile | None:
    """The person with this opaque record id (the console's and the API's), or None."""
    sid = by_public_id(conn, public_id) if len(public_id) <= 64 else None
    return profiles(conn, [sid]).get(sid) if sid is not None else None


def ids_after(conn: Connection, after: int | None, limit: int) -> list[int]:
    """Up to ``limit`` subscriber ids above ``after``, in order (keyset pages for the API)."""
    query = select(subscribers.c.id).order_by(subscribers.c.id).limit(limit)
    if after is not None:
        query = query.where(subscribers.c.id > after)
    return list(conn.execute(query).scalars())


def by_email_key(conn: Connection, key: str) -> int | None:
    return conn.execute(
        select(subscribers.c.id).where(subscribers.c.email_key == key.lower())
    ).scalar_one_or_none()


def set_symptoms(conn: Connection, subscriber_id: int, codes: Iterable[str]) -> None:
    codes = sorted(set(codes))
    conn.execute(
        delete(subscriber_symptoms).where(subscriber_symptoms.c.subscriber_id == subscriber_id)
    )
    if codes:
        conn.execute(
            insert(subscriber_symptoms),
            [{"subscriber_id": subscriber_id, "code": c} for c in codes],
        )
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id)
        .values(red_flag=has_red_flag(codes))
    )


def record_consent(
    conn: Connection,
    subscriber_id: int,
    *,
    purpose: str,
    action: str,
    at: datetime,
    source: str | None = None,
    wording_version: str | None = None,
    wording_hash: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> None:
    conn.execute(
        insert(consent_events).values(
            subscriber_id=subscriber_id,
            purpose=purpose,
            action=action,
            at=at,
            source=source,
            wording_version=wording_version,
            wording_hash=wording_hash,
            ip=ip,
            user_agent=user_agent,
        )
    )


def _hashes(conn: Connection, email_key: str) -> tuple[str, str]:
    """The keyed hash new entries get, and the bare SHA-256 entries made before it existed."""
    return suppression_hash(conn, email_key), address_hash(email_key)


def suppressed_keys(conn: Connection, email_keys: Iterable[str]) -> set[str]:
    """The lower-cased addresses among ``email_keys`` that are on the suppression list.

    Looks up both hash schemes: entries written before the keyed hash (bare SHA-256, marked
    ``scheme = 'sha256'``) keep working; they cannot be re-keyed without the address.
    """
    by_hash: dict[str, str] = {}
    keyed = suppression_hasher(conn)
    for key in email_keys:
        by_hash[keyed(key)] = key
        by_hash.setdefault(address_hash(key), key)
    if not by_hash:
        return set()
    return {
        by_hash[h]
        for h in conn.execute(
            select(suppressions.c.email_hash).where(
                in_values(conn, suppressions.c.email_hash, by_hash)
            )
        ).scalars()
    }


def is_suppressed(conn: Connection, email_key: str) -> bool:
    return bool(suppressed_keys(conn, [email_key]))


def suppression_entry(conn: Connection, email_key: str) -> dict[str, object] | None:
    """The suppression row for this address (either hash scheme), as plain data."""
    row = (
        conn.execute(
            select(suppressions).where(suppressions.c.email_hash.in_(_hashes(conn, email_key)))
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def suppress(conn: Connection, email_key: str, reason: str, at: datetime) -> None:
    """Add the address's keyed hash to the suppression list; the first reason recorded stays.

    An old bare-SHA-256 entry for the address is re-keyed in place (its reason and date kept).
    ON CONFLICT DO NOTHING rather than look-then-insert, so two webhook workers suppressing the
    same address at once cannot collide on the primary key."""
    keyed, bare = _hashes(conn, email_key)
    upgraded = conn.execute(
        update(suppressions)
        .where(suppressions.c.email_hash == bare, suppressions.c.scheme == SCHEME_SHA256)
        .values(email_hash=keyed, scheme=SCHEME_HMAC)
    )
    if upgraded.rowcount:
        return
    conn.execute(
        dialect_insert(conn, suppressions)
        .values(email_hash=keyed, scheme=SCHEME_HMAC, reason=reason, created_at=at)
        .on_conflict_do_nothing(index_elements=[suppressions.c.email_hash])
    )


def unsubscribe(conn: Connection, subscriber_id: int, at: datetime, source: str) -> bool:
    """Withdraw consent to email; returns False when already unsubscribed (idempotent).
    Receivers of the ``subscriber.unsubscribed`` webhook hear of it (outgoing.events)."""
    row = conn.execute(
        select(subscribers.c.status, subscribers.c.public_id).where(
            subscribers.c.id == subscriber_id
        )
    ).first()
    if row is None or row.status == UNSUBSCRIBED:
        return False
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id)
        .values(status=UNSUBSCRIBED, unsubscribed_at=at, updated_at=at)
    )
    record_consent(
        conn, subscriber_id, purpose=EMAIL_PURPOSE, action="withdrawn", at=at, source=source
    )
    outgoing_events.emit(conn, outgoing_events.UNSUBSCRIBED, {"subscriber_id": row.public_id}, at)
    return True
