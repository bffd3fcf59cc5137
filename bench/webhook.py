"""`make bench`: webhook ingest throughput (not a test; prints numbers).

    python bench/webhook.py [--batches 100] [--per-batch 1000] [--database-url URL [--reset]]

Starts `clinicmail serve --no-scheduler` as a real separate process (uvicorn) with a signed
Event Webhook key, seeds 1,000 subscribers with one sent email each, then posts BATCHES signed
SendGrid batches of PER_BATCH events all at once (asyncio + httpx, one connection per batch),
exactly as SendGrid would (ECDSA P-256 over timestamp + body). Reports:

* ingest: events per second from the first post to the last 200 (verified, stored, deduped);
* apply: how long the server's background applier takes to apply them all (suppression,
  unsubscribes, activity facts), and events per second;
* that no post failed, that the table holds exactly BATCHES × PER_BATCH distinct events, and
  that replaying a tenth of the batches stores nothing.

`--database-url postgresql+psycopg://…` measures PostgreSQL; `--reset` first drops everything in
that database's public schema (only ever point it at a scratch database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import func, select, text

from storage import Database
from tests.support.signer import Signer
from tests.support.webhook_batches import bodies, post_all, seed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not start within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--per-batch", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--reset", action="store_true", help="drop the PostgreSQL public schema first"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="clinicmail-webhook-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    if args.reset and url.startswith("postgresql"):
        from sqlalchemy import create_engine

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    signer = Signer()
    # One key file for this script and the server it starts (storage.keys).
    key_file = str(workdir / "clinicmail.keys")
    db = Database(url, key_file=key_file)
    db.migrate()
    targets = seed(db)
    db.dispose()
    payloads = bodies(targets, args.batches, args.per_batch)
    total = args.batches * args.per_batch

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLINICMAIL_")},
        "CLINICMAIL_DATABASE_URL": url,
        "CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
        "CLINICMAIL_SECRET_KEY": "bench-only-secret-bench-only-secret-0123",
        "CLINICMAIL_SECRET_KEY_FILE": key_file,
    }
    exe = Path(sys.executable).parent / "clinicmail"
    proc = subprocess.Popen(  # noqa: S603 - our own console script
        [str(exe), "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        started = time.perf_counter()
        replies = asyncio.run(post_all(base, payloads, signer))
        ingest_s = time.perf_counter() - started
        statuses: dict[int, int] = {}
        for r in replies:
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        stored = sum(r.json().get("stored", 0) for r in replies if r.status_code == 200)

        from engagement.tables import email_events

        db = Database(url, key_file=key_file)
        pending = select(func.count()).where(email_events.c.applied_at.is_(None))
        while True:
            with db.begin() as conn:
                if conn.execute(pending).scalar_one() == 0:
                    break
            time.sleep(0.05)
        applied_s = time.perf_counter() - started
        with db.begin() as conn:
            rows = conn.execute(select(func.count()).select_from(email_events)).scalar_one()
            distinct = conn.execute(
                select(func.count(func.distinct(email_events.c.sg_event_id)))
            ).scalar_one()
        replayed = asyncio.run(post_all(base, payloads[:: max(1, args.batches // 10)], signer))
        with db.begin() as conn:
            after = conn.execute(select(func.count()).select_from(email_events)).scalar_one()
        db.dispose()
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    figures = {
        "database": url.split(":", 1)[0],
        "batches": args.batches,
        "events_per_batch": args.per_batch,
        "concurrent_posts": args.batches,
        "http_statuses": statuses,
        "events_stored": stored,
        "rows_in_email_events": rows,
        "distinct_sg_event_ids": distinct,
        "no_event_lost": rows == distinct == total,
        "ingest_seconds": round(ingest_s, 2),
        "ingest_events_per_second": round(total / ingest_s),
        "all_applied_seconds": round(applied_s, 2),
        "applied_events_per_second": round(total / applied_s),
        "replayed_batches": len(replayed),
        "replay_stored": sum(r.json().get("stored", 0) for r in replayed),
        "replay_rows_added": after - rows,
    }
    print(json.dumps(figures, indent=2))
    if not figures["no_event_lost"] or set(statuses) != {200} or figures["replay_rows_added"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
