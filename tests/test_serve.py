"""`clinicmail serve` as a real process: HTTP + scheduler, clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import write_csv
from tests.support.serve import EXE, free_port, serve_env, spawn_web, wait_healthy
from tests.support.wait import wait_until


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_ticks_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    env = serve_env(tmp_path)
    subprocess.run(
        [EXE, "init"], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=60
    )
    write_csv(tmp_path / "p.csv", ["pat@example.com,Pat,lower_back,Europe/London,yes,,"])
    subprocess.run(
        [EXE, "subscribers", "import", "p.csv"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=60,
    )
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
        def delivered() -> bool:
            listed = subprocess.run(
                [EXE, "outbox", "list"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
            return "pat@example.com" in listed

        wait_until(delivered, timeout=20, interval=0.3, message="the first tick sent nothing")
    finally:
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_scheduler_only_and_no_scheduler(tmp_path: Path) -> None:
    env = serve_env(tmp_path)
    subprocess.run(
        [EXE, "init"], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=60
    )
    sched = subprocess.Popen(
        [EXE, "serve", "--scheduler-only"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    port = free_port()
    web = spawn_web(env, tmp_path, port)
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}/healthz", web).status_code == 200
        time.sleep(1.0)
        assert sched.poll() is None
    finally:
        for p in (sched, web):
            p.send_signal(signal.SIGTERM)
        errs = [p.communicate(timeout=20)[1] for p in (sched, web)]
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
