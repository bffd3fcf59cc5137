"""storage/bulk.py: a batch sent as one bound value stores exactly what ordinary binding stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, text, update

from campaigns import ledger
from campaigns.ledger import sends
from storage import Database
from storage.bulk import in_values, rows_table
from subscribers.tables import subscribers

NOW = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)


def _people(db: Database, count: int) -> list[int]:
    with db.begin() as conn:
        conn.execute(
            insert(subscribers),
            [
                {
                    "public_id": f"{i:032x}",
                    "email": f"p{i}@example.com",
                    "email_key": f"p{i}@example.com",
                    "status": "confirmed",
                    "red_flag": False,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(count)
            ],
        )
        return list(conn.execute(select(subscribers.c.id).order_by(subscribers.c.id)).scalars())


def test_planned_rows_store_what_ordinary_binding_stores(migrated_db: Database) -> None:
    db = migrated_db
    first, second = _people(db, 2)

    def row(subscriber_id: int) -> dict[str, object]:
        return ledger.new_row(
            subscriber_id=subscriber_id,
            campaign_id="c",
            step_id="s1",
            variant_id="default",
            kind="campaign",
            now=NOW,
        )

    with db.begin() as conn:
        conn.execute(insert(sends).values(**row(first)))
        ledger.plan(
            conn,
            [
                row(second),
                row(first),  # a duplicate: left alone
            ],
        )
        stored = conn.execute(
            text("SELECT next_attempt_at, created_at, status FROM sends ORDER BY id")
        ).all()
        # The raw stored values are identical, so comparisons in SQL behave the same.
        assert len(stored) == 2 and stored[0] == stored[1]
        due = select(sends.c.id).where(
            ledger.in_states(ledger.PENDING), sends.c.next_attempt_at <= NOW
        )
        assert len(conn.execute(due).all()) == 2
        later = NOW - timedelta(microseconds=1)
        assert conn.execute(due.where(sends.c.next_attempt_at <= later)).first() is None
        assert conn.execute(select(sends.c.created_at)).scalars().all() == [NOW, NOW]


def test_update_from_rows_and_a_long_in_list(migrated_db: Database) -> None:
    db = migrated_db
    ids = _people(db, 2500)  # more than one old-style 900-id IN chunk, in one statement
    later = NOW + timedelta(days=3)
    with db.begin() as conn:
        changes = rows_table(
            conn,
            [subscribers.c.id, subscribers.c.paused_until, subscribers.c.first_name],
            [(i, later if i % 2 else None, f"n{i}") for i in ids],
            "changes",
        )
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == changes.c.id)
            .values(paused_until=changes.c.paused_until, first_name=changes.c.first_name)
        )
        paused = conn.execute(
            select(subscribers.c.id).where(
                in_values(conn, subscribers.c.id, ids[:2000]),
                subscribers.c.paused_until == later,
            )
        ).scalars()
        assert sorted(paused) == [i for i in ids[:2000] if i % 2]
        names = dict(conn.execute(select(subscribers.c.id, subscribers.c.first_name)).all())
        assert names == {i: f"n{i}" for i in ids}
        found = conn.execute(
            select(subscribers.c.email_key).where(
                in_values(conn, subscribers.c.email_key, ["p1@example.com", "nobody@example.com"])
            )
        ).scalars()
        assert list(found) == ["p1@example.com"]


AWKWARD = [
    "plain",
    'a "quoted" word',
    "back\\slash",
    "comma, {braces}",
    "",
    " spaced ",
    "NULL",
    "ünï ✓",
]


def test_awkward_text_and_nulls_travel_unchanged(migrated_db: Database) -> None:
    """Quotes, backslashes, commas, braces, empty and "NULL" strings, non-ASCII and real NULLs
    come out of the batch value exactly as they went in, on both databases."""
    db = migrated_db
    ids = _people(db, len(AWKWARD) + 1)
    c = subscribers.c
    with db.begin() as conn:
        values = [*AWKWARD, None]
        source = rows_table(conn, [c.id, c.first_name], list(zip(ids, values, strict=True)), "v")
        conn.execute(
            update(subscribers).where(c.id == source.c.id).values(first_name=source.c.first_name)
        )
        stored = dict(conn.execute(select(c.id, c.first_name)).all())
        assert [stored[i] for i in ids] == values
        found = conn.execute(select(c.id).where(in_values(conn, c.first_name, AWKWARD))).scalars()
        assert sorted(found) == ids[:-1]
