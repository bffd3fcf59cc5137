"""Data portability and erasure (``clinicmail subscribers export`` / ``subscribers erase``).

Other packages hold rows about a person too (enrollments, the send ledger). This package may not
import them, so the composition root passes *sections*: named readers that add their rows to an
export. Erasure relies on ``ON DELETE CASCADE`` from every table that references a subscriber.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select

from storage import Database, kvstate
from storage.schema import kv
from subscribers import store
from subscribers.addresses import normalize
from subscribers.directory import SEARCH_PREFIX
from subscribers.symptoms import BY_CODE, GROUPS
from subscribers.tables import (
    consent_events,
    signup_requests,
    subscriber_activity,
    subscriber_symptoms,
    subscribers,
)

Section = Callable[[Connection, int], list[dict[str, Any]]]
ERASED = "erased"
_GROUP_LABELS = {g.id: g.label for g in GROUPS}


def plain(value: Any) -> Any:
    """A JSON-ready value: times as ISO 8601, bytes never (content is not exported)."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def row_dict(row: Mapping[Any, Any], *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: plain(v) for k, v in row.items() if k not in skip}


def _rows_of(conn: Connection, table: Table, sid: int, when: str) -> list[dict[str, Any]]:
    """A person's rows of ``table``, oldest first (by ``when``, then id), without the ids."""
    return [
        row_dict(r, skip=("id", "subscriber_id"))
        for r in conn.execute(
            select(table).where(table.c.subscriber_id == sid).order_by(table.c[when], table.c.id)
        ).mappings()
    ]


def _suppression(conn: Connection, key: str) -> dict[str, Any]:
    row = store.suppression_entry(conn, key)
    if row is None:
        return {"suppressed": False}
    return {"suppressed": True, "reason": row["reason"], "since": plain(row["created_at"])}


def export_person(
    conn: Connection, email: str, *, sections: Mapping[str, Section] | None = None
) -> dict[str, Any] | None:
    """Everything held about the person with this address, or None when there is no one.

    Raises :class:`~subscribers.addresses.InvalidAddress` for text that is not an address.
    """
    _, key = normalize(email)
    person = (
        conn.execute(select(subscribers).where(subscribers.c.email_key == key)).mappings().first()
    )
    if person is None:
        return None
    sid = person["id"]
    codes = conn.execute(
        select(subscriber_symptoms.c.code)
        .where(subscriber_symptoms.c.subscriber_id == sid)
        .order_by(subscriber_symptoms.c.code)
    ).scalars()
    symptoms = []
    for code in codes:
        known = BY_CODE.get(code)
        symptoms.append(
            {
                "code": code,
                "label": known.label if known else code,
                "group": _GROUP_LABELS.get(known.group, known.group) if known else None,
            }
        )
    consent = _rows_of(conn, consent_events, sid, "at")
    activity = _rows_of(conn, subscriber_activity, sid, "first_at")
    out: dict[str, Any] = {
        "profile": row_dict(person, skip=("id", "email_key")),
        "symptoms": symptoms,
        "consent_events": consent,
        # Opens, clicks and check-in answers per email, as the segment rules read them.
        "activity": [a for a in activity if a["kind"] != "checkin"],
        "checkins": [a for a in activity if a["kind"] == "checkin"],
        "suppression": _suppression(conn, key),
        # Signups for this address waiting for its owner to confirm (what was asked, and from
        # where): held apart from the profile until then, but held all the same.
        "held_signups": [
            row_dict(r, skip=("id", "subscriber_id", "public_id", "fingerprint"))
            for r in conn.execute(
                select(signup_requests)
                .where(signup_requests.c.subscriber_id == sid)
                .order_by(signup_requests.c.created_at, signup_requests.c.id)
            ).mappings()
        ],
    }
    for name, read in (sections or {}).items():
        out[name] = read(conn, sid)
    return out


@dataclass(frozen=True)
class Erasure:
    found: bool  # a subscriber row existed and was deleted
    already_suppressed: bool  # the hash was on the suppression list before


def erase(conn: Connection, email: str, now: datetime) -> Erasure:
    """Delete the person and everything that references them; keep only the address's hash.

    Idempotent. An address nobody holds still gets its hash listed, so a later import or signup
    cannot add it back by accident. Raises ``InvalidAddress`` for text that is not an address.
    """
    _, key = normalize(email)
    already = store.is_suppressed(conn, key)
    result = conn.execute(delete(subscribers).where(subscribers.c.email_key == key))
    store.suppress(conn, key, ERASED, now)
    # Staff searches kept for paging may hold the address (or a part of it): forget them all.
    conn.execute(delete(kv).where(kv.c.key.like(f"{SEARCH_PREFIX}%")))
    return Erasure(found=bool(result.rowcount), already_suppressed=already)


SCRUB_PENDING = "privacy.scrub_pending"  # kv row: an erasure whose old copies remain on disk
# How long a checkpoint waits for readers before it reports them (the CLI must not hang).
CHECKPOINT_WAIT_MS = 2000


def scrub(db: Database, tables: Iterable[str] = ()) -> bool:
    """Make an erasure final on disk; call after the erasing transaction committed.

    SQLite: ``secure_delete`` zeroes freed space in the database file, but in WAL mode the old
    pages still sit in the write-ahead log (and the old page in the file) until a checkpoint.
    A TRUNCATE checkpoint copies the log back and empties it. A reader that is still open keeps
    it from completing: then this returns False and leaves a marker, and
    :func:`finish_pending_scrub` (housekeeping) finishes the job once the reader is gone.

    PostgreSQL: ``VACUUM`` of ``tables`` marks the deleted rows' space reusable and removes
    them from indexes; see docs/privacy.md for what that does and does not guarantee.
    """
    if db.is_postgres:
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for name in tables:
                conn.exec_driver_sql(f'VACUUM "{name}"')  # names from our own metadata
        return True
    if not db.is_sqlite:
        return True
    raw = db.engine.raw_connection()  # outside any transaction: a checkpoint cannot run in one
    try:
        cur = raw.cursor()
        cur.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
        busy, _log, _done = cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
    finally:
        raw.close()
    done = int(busy) == 0
    with db.begin() as conn:
        if done:
            conn.execute(delete(kv).where(kv.c.key == SCRUB_PENDING))
        elif kvstate.read(conn, SCRUB_PENDING) is None:
            conn.execute(insert(kv).values(key=SCRUB_PENDING, value="1"))
    return done


def finish_pending_scrub(db: Database) -> bool | None:
    """Retry an unfinished :func:`scrub`: None when nothing waits, else whether it is done now."""
    with db.begin() as conn:
        if kvstate.read(conn, SCRUB_PENDING) is None:
            return None
    return scrub(db)
