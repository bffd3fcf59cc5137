"""End to end: CSV → tick through a fake SendGrid → signed webhook events carrying the real
send_ids → `clinicmail stats`; replays change nothing; bounces and unsubscribes stop later email."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from campaigns.ledger import sends
from engagement.ingest import parse_sendgrid, store
from engagement.tables import email_events
from storage import Database, utcnow
from subscribers.tables import subscribers
from tests.support.app import web
from tests.support.cli import CLI
from tests.support.sendgrid import NEXT_MONDAY, FakeSendGrid, send_first_week
from tests.support.signer import Signer, body_of, event

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for its `httpx2` fork


def _stats(cli: CLI) -> dict[str, Any]:
    run = cli("stats", "--json")
    assert run.code == 0, run.err
    return dict(run.json())


def test_webhook_events_show_in_stats_and_stop_later_email(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path
) -> None:
    signer = Signer()
    sg_cli.env("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    ids = send_first_week(sg_cli, sendgrid, tmp_path)

    def ev(kind: str, email: str, n: int, **extra: Any) -> dict[str, Any]:
        return event(kind, email, n, send_id=ids[email], campaign="spasm-education", **extra)

    batch = [
        *(ev("processed", e, 0) for e in ids),
        *(ev("delivered", e, 1) for e in ("ann@example.com", "bob@example.com")),
        ev("open", "ann@example.com", 2),
        ev("open", "ann@example.com", 3),
        ev("open", "bob@example.com", 4, sg_machine_open=True),  # a privacy prefetch
        ev("click", "ann@example.com", 5, url="https://clinic.example/book"),
        ev("bounce", "cat@example.com", 6, type="bounce", reason="550 5.1.1 unknown user"),
        ev("unsubscribe", "bob@example.com", 7),
        event("open", "stranger@example.com", 8, send_id="0" * 32),  # a send we never made
    ]
    body = body_of(batch)
    with web(sg_cli) as client:
        for _ in range(5):  # SendGrid retries; a replayed batch changes nothing
            r = signer.post(client, body)
            assert r.status_code == 200, r.text
        forged = client.post("/webhooks/sendgrid", content=body, headers=Signer().headers(body))
        assert forged.status_code == 403

    expected = {
        "sent": 3,
        "delivered": 2,
        "opens": 2,
        "unique_opens": 1,
        "clicks": 1,
        "unique_clicks": 1,
        "bounces": 1,
        "spam_reports": 0,
        "unsubscribes": 1,
    }
    stats = _stats(sg_cli)
    # The documented stats: "at least" these keys; click-to-open and check-in answers come beside them
    assert {k: stats["totals"][k] for k in expected} == expected
    assert stats["totals"]["click_to_open"] == 1.0
    (campaign,) = stats["campaigns"]
    assert campaign["id"] == "spasm-education"
    first_step = campaign["steps"][0]
    assert first_step["number"] == 1
    assert {k: first_step[k] for k in expected} == expected
    assert all(s["sent"] == 0 for s in campaign["steps"][1:])
    # per variant: the sciatica, neck and general paths each got one email
    assert sorted(v["sent"] for v in first_step["variants"]) == [1, 1, 1]
    assert sum(v["opens"] for v in first_step["variants"]) == 2

    table = sg_cli("stats", "--variants")
    assert table.code == 0, table.err
    assert "spasm-education" in table.out and "unique opens" in table.out

    # Next week only Ann gets email: Cat bounced (suppressed), Bob unsubscribed.
    before = len(sendgrid.recipients)
    week2 = sg_cli("tick", "--now", NEXT_MONDAY, "--json")
    assert week2.code == 0, week2.err
    assert week2.json()["sent"] == 1
    assert sendgrid.recipients[before:] == ["ann@example.com"]
    assert _stats(sg_cli)["totals"]["sent"] == 4


def test_the_tick_applies_stored_events_before_it_sends(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path, db_url: str
) -> None:
    """Events stored by a web process that never got to apply them (say it stopped right after
    answering) still take effect: the next tick applies them before sending anything."""
    ids = send_first_week(sg_cli, sendgrid, tmp_path)
    raw = body_of(
        [
            event("bounce", "cat@example.com", 1, send_id=ids["cat@example.com"]),
            event("unsubscribe", "bob@example.com", 2, send_id=ids["bob@example.com"]),
        ]
    )
    db = Database(db_url)
    try:
        with db.begin() as conn:
            assert store(conn, parse_sendgrid(raw), utcnow()) == 2

        dry = sg_cli("tick", "--now", NEXT_MONDAY, "--dry-run", "--json")
        assert dry.code == 0, dry.err
        with db.begin() as conn:
            pending = conn.execute(
                select(func.count()).where(email_events.c.applied_at.is_(None))
            ).scalar_one()
        assert pending == 2  # a dry run applies nothing

        # Cat's next email gets planned (suppression is not consent) but is cancelled at claim
        # time; Bob's enrollment ended with his unsubscribe.
        before = len(sendgrid.recipients)
        week2 = sg_cli("tick", "--now", NEXT_MONDAY, "--json").json()
        assert week2["sent"] == 1
        assert sendgrid.recipients[before:] == ["ann@example.com"]
        with db.begin() as conn:
            assert (
                conn.execute(
                    select(func.count()).where(email_events.c.applied_at.is_(None))
                ).scalar_one()
                == 0
            )
            cat = conn.execute(
                select(sends.c.step_id, sends.c.status)
                .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
                .where(subscribers.c.email_key == "cat@example.com")
                .order_by(sends.c.id)
            ).all()
        assert [status for _, status in cat] == ["sent", "cancelled"], cat
    finally:
        db.dispose()
