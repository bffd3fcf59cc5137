"""`clinicmail serve` as a real process: HTTP + scheduler, clean shutdown on SIGTERM/SIGINT.

The database is prepared in-process, by the same ``clinicmail`` entry point the processes run
(a process start costs more than the preparing); the processes then serve it with the same
settings."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from tests.support.cli import CLI, write_csv
from tests.support.serve import EXE, StderrLines, free_port, spawn_web, wait_healthy
from tests.support.wait import wait_until
from transports.tables import outbox

# Processes keep the machine's clock; so does the database they are given.
pytestmark = pytest.mark.real_clock


def _one_due_email(cli: CLI, tmp_path: Path) -> dict[str, str]:
    """A database holding one confirmed subscriber whose first email is due, and the
    environment a ``clinicmail serve`` needs to serve it."""
    # A window that is always open, so the scheduler's first tick sends whatever the hour.
    cli.env("CLINICMAIL_SEND_WINDOW", "00:00-24:00")
    write_csv(tmp_path / "p.csv", ["pat@example.com,Pat,lower_back,Europe/London,yes,,"])
    run = cli("subscribers", "import", "p.csv")  # ``init`` first, as an operator would
    assert run.code == 0, run.err
    return {k: v for k, v in os.environ.items() if not k.startswith("CLINICMAIL_TEST_")}


def _delivered_to(db_url: str, email: str) -> Callable[[], bool]:
    """Has the outbox transport stored a message to ``email``?"""

    def delivered() -> bool:
        engine = create_engine(db_url)
        try:
            with engine.connect() as conn:
                return email in conn.execute(select(outbox.c.recipient)).scalars().all()
        finally:
            engine.dispose()

    return delivered


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_ticks_and_stops_cleanly(
    sqlite_cli: CLI, tmp_path: Path, sig: signal.Signals
) -> None:
    env = _one_due_email(sqlite_cli, tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [EXE, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        # The scheduler's first tick runs at start-up and delivers the due email to the outbox.
        wait_until(
            _delivered_to(sqlite_cli.db_url, "pat@example.com"),
            timeout=20,
            interval=0.3,
            message="the first tick sent nothing",
        )
    finally:
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_scheduler_only_and_no_scheduler(sqlite_cli: CLI, tmp_path: Path) -> None:
    env = _one_due_email(sqlite_cli, tmp_path)
    sched = subprocess.Popen(
        [EXE, "serve", "--scheduler-only"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    sched_log = StderrLines(sched)
    port = free_port()
    web = spawn_web(env, tmp_path, port)
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}/healthz", web).status_code == 200
        # The web process has no scheduler: the email due can only come from the other one,
        # which is still running once its first tick is done.
        wait_until(
            _delivered_to(sqlite_cli.db_url, "pat@example.com"),
            timeout=20,
            interval=0.3,
            message="the scheduler-only process sent nothing",
        )
        assert sched.poll() is None
    finally:
        for p in (sched, web):
            p.send_signal(signal.SIGTERM)
        sched.wait(timeout=20)
        errs = ["\n".join(sched_log.finish()), web.communicate(timeout=20)[1]]
    assert sched.returncode == 0, errs[0]
    assert web.returncode == 0, errs[1]
    both = subprocess.run(
        [EXE, "serve", "--no-scheduler", "--scheduler-only"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert both.returncode == 1 and "cannot be used together" in both.stderr
