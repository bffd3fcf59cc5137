"""O(due), checked by the databases themselves: every statement a real tick runs, on a list with
a long sent history, is explained (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (FORMAT JSON)``
on PostgreSQL) and none may read a whole large table or walk a whole index of one.

Statements are captured with SQLAlchemy's ``before_cursor_execute`` event during one real tick
(planning, sending through the outbox, reconciling, webhook processing), then explained with
the very parameters they ran with."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, select, text

from app.context import AppContext
from app.settings import load_settings
from campaigns.ledger import SENT, UNKNOWN, sends
from campaigns.tables import ACTIVE, COMPLETED, enrollments
from engagement.tables import email_events
from scheduler.tick import run_tick
from storage.schema import metadata
from subscribers.tables import subscribers
from tests.support.cli import CLI
from tests.support.rows import person_row, send_row

PEOPLE = 6_000
DUE = 5
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
# Tables that grow with the list: a statement on them must use an index that narrows the rows.
LARGE = {"subscribers", "enrollments", "sends", "email_events"}


def _seed(ctx: AppContext) -> None:
    """PEOPLE confirmed people, each with three sent campaign emails and a delivered event,
    one enrollment waiting for next week (DUE of them due now) and one completed; a few unknown
    sends waiting for reconciliation."""
    campaign = next(iter(ctx.catalog.campaigns.values()))
    steps = [s.id for s in campaign.steps]
    week_ago = NOW - timedelta(days=7)
    with ctx.db.begin() as conn:
        conn.execute(
            insert(subscribers),
            [person_row(i, week_ago, last_campaign_send_at=week_ago) for i in range(PEOPLE)],
        )
        ids = list(conn.execute(select(subscribers.c.id).order_by(subscribers.c.id)).scalars())
        history = [
            send_row(
                sid,
                campaign.id,
                steps[k],
                status=UNKNOWN if (k == 2 and n >= PEOPLE - 3) else SENT,
                attempts=1,
                next_attempt_at=NOW + timedelta(hours=1)
                if k == 2 and n >= PEOPLE - 3
                else week_ago,
                created_at=week_ago - timedelta(days=7 * (2 - k)),
                sent_at=week_ago - timedelta(days=7 * (2 - k)),
            )
            for n, sid in enumerate(ids)
            for k in range(3)
        ]
        conn.execute(insert(sends), history)
        conn.execute(
            insert(email_events),
            [
                {
                    "provider": "sendgrid",
                    "natural_key": uuid.uuid4().hex,
                    "sg_event_id": uuid.uuid4().hex,
                    "event": "delivered",
                    "kind": "delivered",
                    "send_id": row["send_id"],
                    "machine": False,
                    "occurred_at": row["sent_at"],
                    "received_at": row["sent_at"],
                    "applied_at": row["sent_at"],
                    "payload": "{}",
                }
                for row in history
                if row["status"] == SENT
            ],
        )
        conn.execute(
            insert(enrollments),
            [
                {
                    "subscriber_id": sid,
                    "campaign_id": campaign.id,
                    "step_index": 3,
                    "next_due_at": NOW if n < DUE else NOW + timedelta(days=1 + n % 6),
                    "status": ACTIVE,
                    "created_at": week_ago,
                    "updated_at": week_ago,
                }
                for n, sid in enumerate(ids)
            ]
            + [
                {
                    "subscriber_id": sid,
                    "campaign_id": "finished-series",
                    "step_index": 9,
                    "next_due_at": None,
                    "status": COMPLETED,
                    "created_at": week_ago,
                    "updated_at": week_ago,
                }
                for sid in ids
            ],
        )
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))


@pytest.fixture
def ctx(cli: CLI, db_url: str) -> Iterator[AppContext]:
    assert cli("init").code == 0
    context = AppContext.from_settings(load_settings())
    try:
        yield context
    finally:
        context.close()


def _captured_tick(ctx: AppContext) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        if many:
            parameters = parameters[0] if parameters else ()
        seen.append((statement, parameters))

    event.listen(ctx.db.engine, "before_cursor_execute", capture)
    try:
        report = run_tick(ctx, NOW)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", capture)
    assert report.planned == DUE and report.delivery.sent == DUE  # real work was done
    return seen


def _explainable(statement: str) -> bool:
    head = statement.lstrip().split(None, 1)[0].upper()
    if head in ("SELECT", "UPDATE", "DELETE", "WITH"):
        return "pg_try_advisory" not in statement and any(
            re.search(rf"\b{t}\b", statement) for t in LARGE
        )
    return head == "INSERT" and " SELECT " in statement.upper()


def _partial_indexes() -> set[str]:
    return {
        str(ix.name)
        for table in metadata.tables.values()
        for ix in table.indexes
        if ix.dialect_options["sqlite"].get("where") is not None
    }


def _sqlite_problems(conn: Connection, statement: str, params: Any) -> list[str]:
    partial = _partial_indexes()
    plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
    problems = []
    for row in plan:
        detail = str(row[-1])
        m = re.match(r"SCAN (\w+)", detail)
        if not m or m[1] not in LARGE:
            continue
        used = re.search(r"USING (?:COVERING )?INDEX (\w+)", detail)
        if used and used[1] in partial:
            continue  # walks only the rows the partial index holds (due, pending, ...)
        problems.append(detail)
    return problems


def _pg_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _pg_nodes(child)


def _pg_problems(conn: Connection, statement: str, params: Any) -> list[str]:
    partial = _partial_indexes()
    raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params).scalar_one()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    problems = []
    for node in _pg_nodes(plan[0]["Plan"]):
        # A batch value must reach the plan as a constant: "::cstring" means the text of a
        # typed parameter is parsed again for every row compared (storage.bulk binds untyped).
        conditions = " ".join(
            str(node.get(k, "")) for k in ("Filter", "Index Cond", "Recheck Cond")
        )
        if "::cstring" in conditions:
            problems.append(f"a batch value parsed per row in {node['Node Type']}")
        relation = node.get("Relation Name")
        if relation not in LARGE:
            continue
        kind = node["Node Type"]
        if kind == "Seq Scan":
            problems.append(f"Seq Scan on {relation}")
        elif (
            kind in ("Index Scan", "Index Only Scan")
            and "Index Cond" not in node
            and node.get("Index Name") not in partial
        ):
            problems.append(f"{kind} of all of {node.get('Index Name')} on {relation}")
    return problems


def test_every_statement_of_a_tick_uses_an_index_that_narrows_the_rows(
    ctx: AppContext, db_url: str
) -> None:
    _seed(ctx)
    statements = [(s, p) for s, p in _captured_tick(ctx) if _explainable(s)]
    assert len(statements) >= 10, "the capture missed the tick"
    failures = []
    with ctx.db.engine.connect() as conn:
        for statement, params in statements:
            if conn.dialect.name == "postgresql":
                problems = _pg_problems(conn, statement, params)
            else:
                problems = _sqlite_problems(conn, statement, params)
            if problems:
                failures.append(f"{' '.join(statement.split())[:300]}\n    -> {problems}")
        conn.rollback()
    assert not failures, "full scans in a tick:\n" + "\n".join(failures)
