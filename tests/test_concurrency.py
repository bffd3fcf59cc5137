"""Two dispatcher processes at once over 10,000 due sends, on SQLite and on real PostgreSQL:
exactly one request-recipient per (subscriber, step) reaches the fake SendGrid.

The fixture is bulk-inserted with SQL (5,000 confirmed subscribers, two due steps each) so the
test measures the race, not 10,000 signups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pytest_httpserver import HTTPServer
from sqlalchemy import insert, select

from app.context import AppContext
from app.settings import load_settings
from campaigns.ledger import PENDING, sends
from subscribers.tables import subscribers
from tests.support.approval import approve_library
from tests.support.cli import CLI
from tests.support.rows import person_row, send_row
from tests.support.sendgrid import FakeSendGrid

EXE = str(Path(sys.executable).with_name("clinicmail"))
PEOPLE = 5_000
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _bulk_fixture() -> dict[str, str]:
    """Insert the people and their due sends; returns send_id → "subscriber/step"."""
    ctx = AppContext.from_settings(load_settings())
    try:
        campaign = next(iter(ctx.catalog.campaigns.values()))
        steps = [s.id for s in campaign.steps[:2]]
        people = [person_row(i, NOW) for i in range(PEOPLE)]
        with ctx.db.begin() as conn:
            conn.execute(insert(subscribers), people)
            ids = [r[0] for r in conn.execute(select(subscribers.c.id))]
            ledger = [
                send_row(
                    sid,
                    campaign.id,
                    step,
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=NOW,
                    created_at=NOW,
                )
                for sid in ids
                for step in steps
            ]
            conn.execute(insert(sends), ledger)
        return {r["send_id"]: f"{r['subscriber_id']}/{r['step_id']}" for r in ledger}
    finally:
        ctx.close()


def test_two_dispatching_processes_never_double_send(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path, db_url: str
) -> None:
    sendgrid = FakeSendGrid(httpserver)
    assert cli("init").code == 0
    approve_library(cli)  # campaign email goes through SendGrid only once a clinician approved it
    expected = _bulk_fixture()
    assert len(expected) == 2 * PEOPLE == 10_000
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICMAIL_")}
    env.update(
        CLINICMAIL_DATABASE_URL=db_url,
        CLINICMAIL_TRANSPORT="sendgrid",
        SENDGRID_API_KEY="SG.test",
        CLINICMAIL_SENDGRID_HOST=httpserver.url_for("").rstrip("/"),
    )
    procs = [
        subprocess.Popen(
            [EXE, "tick", "--now", NOW.isoformat(), "--json"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    # One request-recipient per (subscriber, step): every send_id exactly once, none unknown.
    seen = Counter(
        expected[p["custom_args"]["send_id"]]
        for body in sendgrid.requests
        for p in body["personalizations"]
    )
    assert len(seen) == len(expected)
    assert set(seen.values()) == {1}
    assert Counter(sendgrid.recipients) == Counter({f"p{i}@example.com": 2 for i in range(PEOPLE)})
    reports = [json.loads(o[0]) for o in outs]
    assert sum(r["sent"] for r in reports) == len(expected)
    assert all(len(b["personalizations"]) <= 1000 for b in sendgrid.requests)
