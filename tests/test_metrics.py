"""`GET /metrics` shows the ledger, queues and subscribers as Prometheus text, with no personal data."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CLI, write_csv
from tests.test_stats_end_to_end import web

MONDAY = "2026-11-23T10:00:00Z"


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
    with web(cli) as client:
        before = client.get("/metrics")
        assert before.status_code == 200
        assert before.headers["content-type"].startswith("text/plain")
        got = _samples(before.text)
        assert got[("clinicmail_database_up", ())] == 1
        assert got[("clinicmail_subscribers", (("status", "confirmed"),))] == 2
        assert ("clinicmail_sends", (("status", "sent"),)) not in got

        assert cli("tick", "--now", MONDAY, "--json").json()["sent"] == 2
        after = client.get("/metrics").text
        got = _samples(after)
        assert got[("clinicmail_sends", (("status", "sent"),))] == 2
        assert got[("clinicmail_sends_ready", ())] == 0
        assert got[("clinicmail_webhook_events_pending", ())] == 0
        # nothing personal: no address, name or symptom code anywhere in the scrape
        assert not re.search(r"\bann\b|\bbob\b|example\.com|sciatica|lower_back", after, re.I)
