"""The resident memory of a process the benchmarks started (Linux ``/proc``)."""

from __future__ import annotations

from pathlib import Path


def rss_mb(pid: int) -> float:
    """``pid``'s resident set (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")
