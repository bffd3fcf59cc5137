"""`GET /metrics` shows the ledger, queues and subscribers as Prometheus text, with no personal data."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import time_machine
from prometheus_client.parser import text_string_to_metric_families

from app.context import AppContext
from app.http import create_app
from app.service import tick_job
from app.settings import load_settings
from tests.support.app import web
from tests.support.cli import CLI, write_csv

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for its `httpx2` fork
    from fastapi.testclient import TestClient

MONDAY = "2026-11-23T10:00:00Z"


TOKEN = "prometheus-scrape-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_follow_the_ledger(cli: CLI, tmp_path: Path) -> None:
    csv = write_csv(
        tmp_path / "people.csv",
        [
            "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
            "bob@example.com,Bob,neck,Europe/London,yes,,",
            "cat@example.com,Cat,lower_back,Europe/London,no,,",  # rejected: no consent
        ],
    )
    assert cli("init").code == 0
    assert cli("subscribers", "import", str(csv)).code == 0
    cli.env("CLINICMAIL_METRICS_TOKEN", TOKEN)
    with web(cli) as client:
        before = client.get("/metrics", headers=AUTH)
        assert before.status_code == 200
        assert before.headers["content-type"].startswith("text/plain")
        got = _samples(before.text)
        assert got[("clinicmail_database_up", ())] == 1
        assert got[("clinicmail_subscribers", (("status", "confirmed"),))] == 2
        assert ("clinicmail_sends", (("status", "sent"),)) not in got

        assert cli("tick", "--now", MONDAY, "--json").json()["sent"] == 2
        after = client.get("/metrics", headers=AUTH).text
        got = _samples(after)
        assert got[("clinicmail_sends", (("status", "sent"),))] == 2
        assert got[("clinicmail_sends_ready", ())] == 0
        assert got[("clinicmail_webhook_events_pending", ())] == 0
        # nothing personal: no address, name or symptom code anywhere in the scrape
        assert not re.search(r"\bann\b|\bbob\b|example\.com|sciatica|lower_back", after, re.I)


def test_scheduler_ticks_are_counted(cli: CLI, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "p.csv", ["dee@example.com,Dee,neck,Europe/London,yes,,"])
    assert cli("subscribers", "import", str(csv)).code == 0
    ctx = AppContext.from_settings(load_settings())
    try:
        with time_machine.travel(MONDAY, tick=False):
            tick_job(ctx)  # the job the scheduler runs every minute
            tick_job(ctx)  # nothing left to send: counted as a tick, no more emails
        with TestClient(create_app(ctx), client=("127.0.0.1", 40000)) as client:
            got = _samples(client.get("/metrics").text)  # loopback, no token configured
    finally:
        ctx.close()
    assert got[("clinicmail_ticks_total", (("result", "ok"),))] == 2
    assert got[("clinicmail_emails_total", (("outcome", "sent"),))] == 1
    assert got[("clinicmail_tick_seconds_count", ())] == 2


def _metrics_status(
    cli: CLI, client_host: str, headers: dict[str, str] | None = None, **env: str
) -> int:
    for name, value in env.items():
        cli.env(name, value)
    ctx = AppContext.from_settings(load_settings())
    try:
        with TestClient(create_app(ctx), client=(client_host, 40000)) as client:
            return client.get("/metrics", headers=headers or {}).status_code
    finally:
        ctx.close()


def test_metrics_without_a_token_answer_loopback_only(cli: CLI) -> None:
    assert cli("init").code == 0
    assert _metrics_status(cli, "127.0.0.1") == 200
    assert _metrics_status(cli, "::1") == 200
    assert _metrics_status(cli, "203.0.113.9") == 403
    # a forged X-Forwarded-For from a stranger does not make them loopback
    assert _metrics_status(cli, "203.0.113.9", {"X-Forwarded-For": "127.0.0.1"}) == 403


def test_metrics_with_a_token_need_it_from_everyone(cli: CLI) -> None:
    assert cli("init").code == 0
    cli.env("CLINICMAIL_METRICS_TOKEN", TOKEN)
    assert _metrics_status(cli, "203.0.113.9", AUTH) == 200
    assert _metrics_status(cli, "127.0.0.1") == 401  # loopback too: the token is the rule
    assert _metrics_status(cli, "203.0.113.9", {"Authorization": "Bearer wrong"}) == 401
    assert _metrics_status(cli, "203.0.113.9", {"Authorization": TOKEN}) == 401


def test_a_short_metrics_token_is_refused_at_start(cli: CLI) -> None:
    cli.env("CLINICMAIL_METRICS_TOKEN", "short")
    run = cli("init")
    assert run.code == 1 and "CLINICMAIL_METRICS_TOKEN" in run.err and "short" not in run.err
