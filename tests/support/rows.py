"""Rows written straight into the tables, for tests that need many people or sends at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from campaigns import ledger
from campaigns.ledger import CAMPAIGN, sends
from subscribers import store
from subscribers.symptoms import has_red_flag
from subscribers.tables import subscriber_symptoms, subscribers


def person_row(i: int, at: datetime, **columns: Any) -> dict[str, Any]:
    """A confirmed subscriber ``p{i}@example.com`` in London, created and confirmed at ``at``."""
    return {
        "public_id": uuid.uuid4().hex,
        "email": f"p{i}@example.com",
        "email_key": f"p{i}@example.com",
        "first_name": f"P{i}",
        "timezone": "Europe/London",
        "status": "confirmed",
        "red_flag": False,
        "created_at": at,
        "updated_at": at,
        "confirmed_at": at,
        **columns,
    }


def send_row(subscriber_id: int, campaign_id: str, step_id: str, **columns: Any) -> dict[str, Any]:
    """A campaign send of the default variant, with a fresh send_id."""
    return {
        "send_id": uuid.uuid4().hex,
        "subscriber_id": subscriber_id,
        "campaign_id": campaign_id,
        "step_id": step_id,
        "variant_id": "default",
        "kind": CAMPAIGN,
        **columns,
    }


def insert_subscriber(
    conn: Connection,
    email: str,
    at: datetime,
    *,
    public_id: str,
    confirmed_at: datetime | None,
    timezone: str | None = None,
    codes: Iterable[str] = (),
) -> int:
    """A confirmed subscriber created at ``at`` with these symptom codes; their id."""
    codes = list(codes)
    sid: int = conn.execute(
        insert(subscribers)
        .values(
            public_id=public_id,
            email=email,
            email_key=email.lower(),
            timezone=timezone,
            status=store.CONFIRMED,
            red_flag=has_red_flag(codes),
            created_at=at,
            updated_at=at,
            confirmed_at=confirmed_at,
        )
        .returning(subscribers.c.id)
    ).scalar_one()
    if codes:
        conn.execute(
            insert(subscriber_symptoms), [{"subscriber_id": sid, "code": c} for c in codes]
        )
    return sid


def plan_sends(
    conn: Connection,
    sid: int,
    campaign_id: str,
    kind: str,
    steps: tuple[str, ...],
    now: datetime,
) -> dict[str, int]:
    """Plan one pending send per step for the person, through the ledger; step → row id of
    every send in the table."""
    ledger.plan(
        conn,
        [
            ledger.new_row(
                subscriber_id=sid,
                campaign_id=campaign_id,
                step_id=step,
                variant_id="default",
                kind=kind,
                now=now,
            )
            for step in steps
        ],
    )
    return {r.step_id: r.id for r in conn.execute(select(sends.c.step_id, sends.c.id))}
