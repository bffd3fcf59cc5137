"""Kill a real ``clinicmail tick`` process at arbitrary moments mid-send, and count what each
recipient got (tests/test_delivery_kill.py and the measurement in docs/delivery.md). (No tests
here.)

A round starts ``clinicmail tick --now T`` as a subprocess, waits (with a deadline) until it has
claimed work, then lets it run a random extra while before SIGKILL: the kill lands wherever
the process happens to be (rendering, a commit, a socket write, waiting for a reply), not at a
point chosen in the code. Each round ticks eleven minutes after the last, so the dead process's
lease has run out and its rows are recovered the way production recovers them.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

from campaigns.ledger import sends
from tests.support.wait import wait_until

EXE = str(Path(sys.executable).with_name("clinicmail"))


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KillReport:
    kills: int = 0
    rounds: int = 0
    finished_early: int = 0  # rounds whose process ended before the kill came
    statuses_after_kill: list[Counter[str]] = field(default_factory=list)


def _claimed_or_done(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(sends).where(sends.c.status != "pending")
            ).scalar_one()
        )


def settled(engine: Engine) -> int:
    """Sends settled so far (neither pending nor held by a process): it only grows, so a round
    waits for its own process to get an email out before the kill's random moment starts.
    (Counting claims would not do on a paced run: after a kill the dead process's claims are
    counted already, the next round's re-claim of the same rows adds nothing, and the round
    could only be seen to move by finishing, so no later kill would land.)"""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(sends)
                .where(sends.c.status.not_in(("pending", "claimed", "sending")))
            ).scalar_one()
        )


def _statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(
            {
                str(s): int(n)
                for s, n in conn.execute(text("SELECT status, count(*) FROM sends GROUP BY status"))
            }
        )


def _moved(
    proc: subprocess.Popen[str], engine: Engine, before: int, progressed: Callable[[Engine], int]
) -> bool:
    """The process has finished, or has done some work since ``before`` was counted."""
    return proc.poll() is not None or progressed(engine) > before


def kill_rounds(
    db_url: str,
    env: dict[str, str],
    cwd: Path,
    start: datetime,
    kills: int,
    *,
    max_extra: float,
    rng: random.Random,
    deadline: float = 120.0,
    progressed: Callable[[Engine], int] = _claimed_or_done,
) -> tuple[KillReport, datetime]:
    """Up to ``kills`` SIGKILLs of a sending process; returns the report and the next tick time."""
    engine = create_engine(db_url)
    report = KillReport()
    at = start
    try:
        while report.kills < kills and report.rounds < kills * 3:
            report.rounds += 1
            before = progressed(engine)
            proc = subprocess.Popen(
                [EXE, "tick", "--now", iso(at)],
                env=env,
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:  # until it has done some work (or finished): then the kill lands inside it
                wait_until(
                    partial(_moved, proc, engine, before, progressed),
                    timeout=deadline,
                    # Each poll is a query: asked every 5 ms it took a core from the process
                    # being started (its import and library check) on a two-core machine. 20 ms
                    # late is nothing beside the random while the kill then waits.
                    interval=0.02,
                    message="the sending process made no progress",
                )
            except AssertionError:
                proc.kill()
                raise
            # The kill's moment: a random while into the work, wherever the process is then.
            try:
                proc.wait(timeout=rng.uniform(0.0, max_extra))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
            if proc.returncode == -signal.SIGKILL:
                report.kills += 1
                report.statuses_after_kill.append(_statuses(engine))
            else:
                assert proc.returncode == 0, err
                report.finished_early += 1
            at += timedelta(minutes=11)  # past the dead process's lease
    finally:
        engine.dispose()
    return report, at
