"""The 20-kill measurement of docs/delivery.md ("After a crash, measured"): a real
``clinicmail tick`` process is killed with SIGKILL at random moments mid-send, 20 times, on the
outbox and on SMTP (a real aiosmtpd server on loopback), on SQLite and PostgreSQL; then ticks
run with nobody killing them, and what each person got is counted.

    python bench/kills.py [--people 2000] [--kills 20] [--rate 100] [--postgres-url URL]

Each round is paced (``CLINICMAIL_SEND_RATE``, emails per second) so that a round is still
sending when its kill comes: unpaced, the first rounds send the whole list before their random
kill moment and the later rounds find nothing to do. The kill itself is not chosen: the harness
(``tests/support/killer.py``) waits until the process has claimed work, then a random while
more, wherever the process is then (the pacer's wait, rendering, a commit, a socket write).

``--postgres-url`` must point at a scratch database: its public schema is dropped first.
Sized for a shared 2-core machine: 2,000 people per case, four cases, a few minutes in all.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from campaigns.ledger import sends
from tests.support.approval import approve_library
from tests.support.backends import reset_postgres
from tests.support.cli import CLI
from tests.support.delivery import import_people, londoners
from tests.support.killer import iso, kill_rounds
from tests.support.serve import free_port
from tests.support.smtp import Sink, use_smtp
from transports.tables import outbox

T0 = datetime(2026, 11, 23, 10, 0)  # a Monday, 10:00 in London


def _finish(cli: CLI, db_url: str, after: datetime) -> None:
    """Ticks nobody kills, until the ledger holds nothing to send: leases run out, unknown sends
    pass the 6-hour reconciliation window and go again. After 20 rounds that window ends past
    the 20:00 send window, so what it releases goes the next morning: tick then too."""
    next_morning = (after + timedelta(days=1)).replace(hour=9, minute=0)
    for at in (after, after + timedelta(hours=7), next_morning):
        run = cli("tick", "--now", iso(at), "--json")
        assert run.code == 0, run.err
    last = cli("tick", "--now", iso(next_morning + timedelta(minutes=15)), "--json").json()
    assert last["sent"] == 0 and last["unknown"] == 0, last
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            waiting = conn.execute(
                select(func.count())
                .select_from(sends)
                .where(sends.c.status.in_(("pending", "retry", "claimed", "sending", "unknown")))
            ).scalar_one()
    finally:
        engine.dispose()
    assert waiting == 0, f"{waiting} sends still waiting"


def _settled(engine: Engine) -> int:
    """Sends settled so far: it only grows, so each round waits for its own process to get
    one email out before the kill's random moment starts. (Counting claims would not do:
    after a kill the dead process's claims are counted already, and the next round's re-claim
    of the same rows adds nothing, so the kill would never be armed.)"""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(sends)
                .where(sends.c.status != "pending")
                .where(sends.c.status != "claimed")
                .where(sends.c.status != "sending")
            ).scalar_one()
        )


def _stored(db_url: str) -> Counter[str]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return Counter(r[0] for r in conn.execute(select(outbox.c.recipient)))
    finally:
        engine.dispose()


def run_case(
    transport: str, database: str, db_url: str, people: int, kills: int, rate: float, seed: int
) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix=f"clinicmail-kills-{transport}-"))
    mp = pytest.MonkeyPatch()
    controller: Controller | None = None
    sink = Sink()
    try:
        if db_url.startswith("postgresql"):
            reset_postgres(db_url)
        else:
            db_url = f"sqlite:///{workdir / 'clinicmail.db'}"
        mp.setenv("XDG_STATE_HOME", str(workdir / "state"))
        cli = CLI(mp, workdir, db_url, init=True)
        cli.env("CLINICMAIL_SEND_RATE", str(rate))
        if transport == "smtp":
            port = free_port()
            controller = Controller(sink, hostname="127.0.0.1", port=port)
            controller.start()
            use_smtp(cli, port)
            approve_library(cli)
        else:
            cli.env("CLINICMAIL_TRANSPORT", "outbox")
        import_people(cli, workdir, londoners(transport[0], people))
        report, after = kill_rounds(
            db_url,
            dict(os.environ),
            workdir,
            T0,
            kills,
            max_extra=1.5,
            rng=random.Random(seed),
            deadline=300.0,
            progressed=_settled,
        )
        _finish(cli, db_url, after)
        if transport == "smtp":
            got = Counter(r for _, rcpts, _ in sink.messages for r in rcpts)
        else:
            got = _stored(db_url)
        return {
            "transport": transport,
            "database": database,
            "people": people,
            "kills": report.kills,
            "rounds": report.rounds,
            "duplicates": sum(n - 1 for n in got.values()),
            "people_with_a_duplicate": sum(1 for n in got.values() if n > 1),
            "missed": people - len(got),
        }
    finally:
        if controller is not None:
            controller.stop()
        mp.undo()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0, help="emails per second per round")
    parser.add_argument("--postgres-url", help="a scratch PostgreSQL database (dropped first)")
    parser.add_argument("--transport", choices=["outbox", "smtp"], action="append")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    databases = [("SQLite", "sqlite")]
    if args.postgres_url:
        databases.append(("PostgreSQL", args.postgres_url))
    print("| transport | database | people | kills landed | rounds | duplicates | missed |")
    print("|---|---|---|---|---|---|---|")
    for transport in args.transport or ["outbox", "smtp"]:
        for name, url in databases:
            r = run_case(transport, name, url, args.people, args.kills, args.rate, args.seed)
            print(
                f"| {r['transport']} | {r['database']} | {r['people']:,} | {r['kills']} | "
                f"{r['rounds']} | {r['duplicates']} | {r['missed']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
