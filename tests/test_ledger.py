"""The send ledger's own contract (campaigns/ledger.py): transitions move only rows in their
"from" states, acceptance moves the weekly cap, and each send records its content version."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

from app.context import AppContext
from app.settings import load_settings
from campaigns import ledger
from campaigns.ledger import CAMPAIGN, SYSTEM, SYSTEM_CAMPAIGN, Status, sends
from scheduler.tick import run_tick
from subscribers.tables import subscribers
from tests.support.cli import CLI, write_csv
from tests.support.rows import plan_sends

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def ctx(cli: CLI, tmp_path: Path) -> Iterator[AppContext]:
    csv = write_csv(tmp_path / "one.csv", ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    assert cli("subscribers", "import", str(csv)).code == 0
    context = AppContext.from_settings(load_settings())
    try:
        yield context
    finally:
        context.close()


def _rows(ctx: AppContext) -> dict[str, tuple[str, str | None]]:
    with ctx.db.begin() as conn:
        return {
            step: (status, version)
            for step, status, version in conn.execute(
                select(sends.c.step_id, sends.c.status, sends.c.content_version)
            )
        }


def test_each_send_records_the_content_version_it_was_planned_from(ctx: AppContext) -> None:
    campaign = ctx.catalog.campaigns["spasm-education"]
    ctx.catalog.campaigns[campaign.id] = campaign.model_copy(update={"version_id": "v42"})
    report = run_tick(ctx, NOW)
    assert report.delivery.sent == 1
    ((status, version),) = _rows(ctx).values()
    assert (status, version) == (Status.SENT, "v42")


def test_transitions_move_only_rows_in_their_from_states(ctx: AppContext) -> None:
    with ctx.db.begin() as conn:
        sid = conn.execute(select(subscribers.c.id)).scalar_one()
        ids = plan_sends(conn, sid, SYSTEM_CAMPAIGN, SYSTEM, ("a", "b"), NOW)
        ledger.claim(conn, [ids["a"], ids["b"]], NOW + timedelta(minutes=10))
        ledger.start_sending(conn, [ids["a"]], lease_until=NOW, transport="outbox")
        # "a" is sending: unclaiming it must not put it back to pending (it may have left).
        ledger.unclaim(conn, [ids["a"], ids["b"]])
    assert {k: v[0] for k, v in _rows(ctx).items()} == {"a": Status.SENDING, "b": Status.PENDING}
    with ctx.db.begin() as conn:
        released, unknown = ledger.recover_expired(conn, NOW + timedelta(seconds=1))
    assert (released, unknown) == (0, 1)
    assert _rows(ctx)["a"][0] == Status.UNKNOWN


def test_acceptance_moves_the_weekly_cap_and_never_back(ctx: AppContext) -> None:
    with ctx.db.begin() as conn:
        sid = conn.execute(select(subscribers.c.id)).scalar_one()
        ids = plan_sends(conn, sid, "spasm-education", CAMPAIGN, ("later", "earlier"), NOW)
        assert ledger.campaign_in_flight(conn, [sid]) == {sid: NOW}
        ledger.mark_sent(conn, [ids["later"]], at=NOW + timedelta(days=1), provider_message_id="m")
        ledger.mark_sent(conn, [ids["earlier"]], at=NOW, provider_message_id="m")
        last = conn.execute(select(subscribers.c.last_campaign_send_at)).scalar_one()
        assert last == NOW + timedelta(days=1)
        assert ledger.campaign_in_flight(conn, [sid]) == {}


def test_status_predicates_reach_the_database_as_literals(ctx: AppContext) -> None:
    """What the database receives (not a bound parameter), so its partial index applies."""
    seen: list[str] = []

    def capture(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(ctx.db.engine, "before_cursor_execute", capture)
    try:
        with ctx.db.begin() as conn:
            conn.execute(select(sends.c.id).where(ledger.in_states(Status.PENDING, Status.RETRY)))
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", capture)
    assert any("IN ('pending', 'retry')" in statement for statement in seen), seen
