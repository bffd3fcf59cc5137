"""Machine engagement is recorded but never counted: privacy-proxy opens (SendGrid's flag, the
bare "Mozilla/5.0" agent, Apple's network) and link-scanner clicks within seconds of delivery."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engagement.events import from_sendgrid, is_machine_open
from engagement.process import SCANNER_SECONDS
from engagement.tables import email_events
from storage import Database
from subscribers.tables import subscriber_activity
from tests.support.cli import CLI
from tests.support.engagement import MONDAY, deliver_events, import_and_send, people, send_ids, sg

DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"


@pytest.mark.parametrize(
    ("raw", "machine"),
    [
        ({"sg_machine_open": True, "useragent": DESKTOP, "ip": "81.2.69.160"}, True),
        ({"useragent": "Mozilla/5.0", "ip": "81.2.69.160"}, True),  # Apple's proxy agent
        ({"useragent": " mozilla/5.0 ", "ip": "81.2.69.160"}, True),
        ({"useragent": DESKTOP, "ip": "17.58.101.4"}, True),  # Apple's own network
        ({"useragent": DESKTOP, "ip": "81.2.69.160"}, False),
        ({"useragent": DESKTOP, "ip": "not an address"}, False),
        ({"sg_machine_open": False}, False),
        ({"useragent": 5, "ip": ["17.0.0.1"]}, False),  # odd types prove nothing
    ],
)
def test_privacy_proxy_opens(raw: dict[str, object], machine: bool) -> None:
    assert is_machine_open(raw) is machine
    assert from_sendgrid({"event": "open", **raw}).machine is machine
    # clicks are never judged by agent or address (a person clicking in Apple Mail is real)
    assert from_sendgrid({"event": "click", **raw}).machine is False


def _stats(cli: CLI) -> dict[str, int]:
    run = cli("stats", "--json")
    assert run.code == 0, run.err
    totals: dict[str, int] = run.json()["totals"]
    return totals


def test_scanner_clicks_and_machine_opens_are_stored_but_not_counted(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    import_and_send(cli, tmp_path, people(2))
    ids = send_ids(db_url)
    ann, bob = "p0@example.com", "p1@example.com"
    soon = timedelta(seconds=SCANNER_SECONDS - 4)
    events = [
        sg("delivered", ann, MONDAY + timedelta(seconds=30), ids[ann]),
        # a gateway follows both links seconds after the delivery it saw
        sg(
            "click",
            ann,
            MONDAY + timedelta(seconds=30) + soon,
            ids[ann],
            1,
            url="https://a.example/1",
        ),
        sg(
            "click",
            ann,
            MONDAY + timedelta(seconds=31) + soon,
            ids[ann],
            2,
            url="https://a.example/2",
        ),
        # no delivery event yet: the ledger's hand-over time is the reference
        sg("click", bob, MONDAY + soon, ids[bob], 1, url="https://a.example/1"),
        # a person, ten minutes later
        sg("click", bob, MONDAY + timedelta(minutes=10), ids[bob], 2, url="https://a.example/1"),
        sg("open", ann, MONDAY + timedelta(minutes=5), ids[ann], sg_machine_open=True),
        sg("open", bob, MONDAY + timedelta(minutes=6), ids[bob], useragent="Mozilla/5.0"),
    ]
    later = MONDAY + timedelta(hours=1)
    assert deliver_events(db_url, events, later) == len(events)

    db = Database(db_url)
    try:
        with db.begin() as conn:
            flags = conn.execute(
                select(email_events.c.event, email_events.c.occurred_at, email_events.c.machine)
                .where(email_events.c.event.in_(["click", "open"]))
                .order_by(email_events.c.occurred_at)
            ).all()
            facts = conn.execute(
                select(subscriber_activity.c.kind, subscriber_activity.c.count)
            ).all()
    finally:
        db.dispose()
    human = [(e, at) for e, at, machine in flags if not machine]
    assert human == [("click", MONDAY + timedelta(minutes=10))]
    assert len(flags) == 6  # every event is kept, machine ones included
    assert facts == [("click", 1)]  # only Bob's real click became an activity fact

    totals = _stats(cli)
    assert (totals["opens"], totals["unique_opens"]) == (0, 0)
    assert (totals["clicks"], totals["unique_clicks"]) == (1, 1)
    assert totals["delivered"] == 1

    # the same batch again (SendGrid retries) changes nothing
    assert deliver_events(db_url, events, later) == 0
    assert _stats(cli) == totals
