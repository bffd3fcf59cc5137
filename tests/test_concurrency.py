"""Two dispatchers at once over the same due sends: exactly one request-recipient per send."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from pytest_httpserver import HTTPServer

from tests.conftest import CLI, write_csv
from tests.test_tick_sendgrid import FakeSendGrid

EXE = str(Path(sys.executable).with_name("clinicmail"))
N = 3000


def test_two_ticking_processes_never_double_send(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path, db_url: str
) -> None:
    sendgrid = FakeSendGrid(httpserver)
    rows = [f"p{i}@example.com,P{i},lower_back,Europe/London,yes,,bulk" for i in range(N)]
    write_csv(tmp_path / "bulk.csv", rows)
    assert (
        cli("subscribers", "import", str(tmp_path / "bulk.csv"), "--json").json()["imported"] == N
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICMAIL_")}
    env.update(
        CLINICMAIL_DATABASE_URL=db_url,
        CLINICMAIL_TRANSPORT="sendgrid",
        SENDGRID_API_KEY="SG.test",
        CLINICMAIL_SENDGRID_HOST=httpserver.url_for("").rstrip("/"),
    )
    procs = [
        subprocess.Popen(
            [EXE, "tick", "--now", "2026-11-23T10:00:00Z", "--json"],
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
    counts = Counter(sendgrid.recipients)
    assert len(counts) == N
    assert max(counts.values()) == 1
    send_ids = Counter(
        p["custom_args"]["send_id"] for b in sendgrid.requests for p in b["personalizations"]
    )
    assert len(send_ids) == N and max(send_ids.values()) == 1
