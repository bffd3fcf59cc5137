"""Subscribers imported at a fixed time, for the delivery tests that tick at fixed ``--now`` values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import time_machine

from tests.support.cli import CLI, write_csv

IMPORTED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def import_people(cli: CLI, tmp_path: Path, rows: list[str], at: datetime = IMPORTED) -> None:
    """Import at a fixed time, so the first email is due from then whatever today's date is
    (the delivery tests tick at fixed ``--now`` values)."""
    with time_machine.travel(at, tick=False):
        run = cli("subscribers", "import", str(write_csv(tmp_path / "p.csv", rows)), "--json")
    assert run.code == 0 and run.json()["rejected"] == 0, run.out


def londoners(letter: str, n: int) -> list[str]:
    """CSV rows for ``n`` consenting people {letter}0@example.com… in London with a sore back."""
    return [
        f"{letter}{i}@example.com,{letter.upper()},lower_back,Europe/London,yes,," for i in range(n)
    ]
