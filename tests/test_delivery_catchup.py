"""Catch-up after downtime: the real APScheduler BackgroundScheduler from
``app.service.make_scheduler`` under a controlled clock (time-machine). Three hours without
processing leave 180 missed minute-ticks; one coalesced pass runs, and it respects every
subscriber's send window: whoever is asleep at restart time is postponed, not mailed at night."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from sqlalchemy import select

from app.context import AppContext
from app.service import TICK_SECONDS, make_scheduler
from app.settings import load_settings
from tests.support.cli import CLI, write_csv
from transports.tables import outbox

MONDAY_7Z = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 07:00 London, 23:00 (Sunday) Los Angeles
JOB = "plan-and-dispatch"


class Runs:
    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.changed = threading.Condition()

    def __call__(self, event: JobExecutionEvent) -> None:
        if event.job_id != JOB:
            return
        with self.changed:
            self.events["missed" if event.code == EVENT_JOB_MISSED else "executed"] += 1
            self.changed.notify_all()

    def wait_executed(self, n: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.events["executed"] >= n, timeout=60), (
                self.events
            )


def _recipients(ctx: AppContext) -> list[str]:
    with ctx.db.begin() as conn:
        return [r[0] for r in conn.execute(select(outbox.c.recipient).order_by(outbox.c.id))]


def test_three_hours_down_then_one_catch_up_pass_inside_send_windows(
    cli: CLI, tmp_path: Path
) -> None:
    rows = [
        "lon@example.com,Lou,lower_back,Europe/London,yes,,",
        "la@example.com,Lee,lower_back,America/Los_Angeles,yes,,",
    ]
    with time_machine.travel(MONDAY_7Z, tick=True) as clock:
        cli("subscribers", "import", str(write_csv(tmp_path / "p.csv", rows)))
        ctx = AppContext.from_settings(load_settings())
        runs = Runs()
        sched = make_scheduler(ctx)
        sched.add_listener(runs, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
        sched.start()
        try:
            runs.wait_executed(1)  # the start-up tick: both windows are closed at 07:00Z
            assert _recipients(ctx) == []
            # Downtime: nothing is processed for three hours (180 ticks' worth).
            sched.pause()
            clock.shift(timedelta(hours=3))
            sched.resume()
            runs.wait_executed(2)
            job = sched.get_job(JOB)
            assert job is not None and job.coalesce and job.max_instances == 1
            # The backlog is gone: the next run is a normal interval ahead, not in the past.
            assert job.next_run_time > datetime.now(UTC)
            assert job.next_run_time - datetime.now(UTC) <= timedelta(seconds=TICK_SECONDS)
        finally:
            sched.shutdown(wait=True)
        assert runs.events == Counter({"executed": 2})  # one catch-up pass, nothing missed
        # 10:00 in London: mailed. 02:00 in Los Angeles: postponed, not mailed at night.
        assert _recipients(ctx) == ["lon@example.com"]
        ctx.close()
    assert cli("tick", "--now", "2026-11-23T15:59:00Z", "--json").json()["sent"] == 0
    assert cli("tick", "--now", "2026-11-23T16:00:00Z", "--json").json()["sent"] == 1  # 08:00 PST
