"""The scale-out path at a small size: three `clinicmail serve --scheduler-only` and two
`clinicmail serve --no-scheduler` processes on one PostgreSQL database, sending through the real
`sendgrid` client to a fake SendGrid while the web processes take signups and signed webhook
batches. No email twice, none lost, every signup stored and confirmed, every event stored.

It runs `bench/scaleout.py`'s code (the benchmark behind docs/benchmarks.md's scale-out
section), whose checks compare what the fake SendGrid received with the due list and the ledger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scaleout import MIN_SIGNUPS, measure
from bench.sections import write_report, write_scaleout
from tests.support.backends import PG_URL, REQUIRE_PG

PEOPLE = 3_000


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.real_clock
def test_three_schedulers_and_two_web_processes_lose_and_double_nothing() -> None:
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail(
                "CLINICMAIL_TEST_REQUIRE_POSTGRES=1 but CLINICMAIL_TEST_POSTGRES_URL is not set"
            )
        pytest.skip("set CLINICMAIL_TEST_POSTGRES_URL to run the PostgreSQL tests")
    figures = measure(PG_URL, PEOPLE, [3], rate=20.0, timeout=120)
    (run,) = figures["runs"]
    assert figures["seed"]["imported"] == PEOPLE
    assert run["due"] == PEOPLE  # everyone's first email was due
    assert run["checks"] == dict.fromkeys(run["checks"], 0), run["checks"]
    assert run["ok"] and figures["ok"]
    # The traffic happened: signups (each with its confirmation email) and webhook events.
    assert run["signups_accepted"] >= MIN_SIGNUPS
    assert run["webhook_events_accepted"] > 0
    assert run["recipients_seen"] == PEOPLE + run["signups_accepted"]
    # What the three schedulers say they sent adds up to what SendGrid received: no request
    # was made twice behind the ledger's back.
    assert len(run["sent_by_scheduler"]) == 3
    assert sum(run["sent_by_scheduler"]) == run["recipients_seen"]
    assert run["ledger_statuses"] == {"sent": run["recipients_seen"]}


def test_both_benchmarks_keep_each_others_part_of_the_report(tmp_path: Path) -> None:
    """bench/delivery.py rewrites docs/benchmarks.md and bench/scaleout.py replaces its own
    section: neither loses what the other wrote, in either order, run after run."""
    doc = tmp_path / "benchmarks.md"
    write_report(doc, "# Benchmarks\n\ndelivery run 1\n")
    write_scaleout(doc, "## Scale-out\n\nscale-out run 1\n")
    write_report(doc, "# Benchmarks\n\ndelivery run 2\n")
    text = doc.read_text(encoding="utf-8")
    assert "delivery run 2" in text and "scale-out run 1" in text and "delivery run 1" not in text
    write_scaleout(doc, "## Scale-out\n\nscale-out run 2\n")
    text = doc.read_text(encoding="utf-8")
    assert "delivery run 2" in text and "scale-out run 2" in text
    assert "run 1" not in text
    assert text.index("delivery run 2") < text.index("scale-out run 2")
    assert text.count("## Scale-out") == 1
