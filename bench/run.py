"""`make bench`: measured figures for the import and the send path (not a test; prints numbers).

    python bench/run.py [--rows 100000] [--per-recipient-rows N] [--path both|batched|per-recipient]
                        [--database-url URL] [--import-only]

1. CSV import of N generated rows: rows/second and peak memory (RSS).
2. One tick delivering N due first emails through the real `sendgrid` client to a local fake
   SendGrid (202 + X-Message-Id, on loopback): emails/second and requests made, on
   - the batched path: one render per (step, variant), up to 1000 personalizations a request;
   - the per-recipient path (``Dispatcher.per_recipient``, for templates that need their own
     render): each email filled in full and posted alone, one personalization a request.
   The tick runs in a process of its own (started as the service starts: settings, schema check,
   catalog), so its peak RSS is the sending process's own.
   Each path runs on its own fresh database (default: SQLite files in a temporary directory; with
   ``--database-url`` pick one path per run, the database must be empty).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SYMPTOMS = ["lower_back;acute_spasm", "lower_back;sciatica", "neck;desk_posture", "mid_back", ""]
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class FakeSendGrid(BaseHTTPRequestHandler):
    """Answers 202 + X-Message-Id and counts requests and recipients (shared counters, since
    it runs in its own process: see :func:`serve_fake_sendgrid`)."""

    requests: Any = None  # multiprocessing.Value("q")
    recipients: Any = None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        count = len(json.loads(body)["personalizations"])
        with FakeSendGrid.requests.get_lock():
            FakeSendGrid.requests.value += 1
            FakeSendGrid.recipients.value += count
            n = FakeSendGrid.requests.value
        self.send_response(202)
        self.send_header("X-Message-Id", f"bench{n}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


class FakeServer:
    """The fake SendGrid in a process of its own, so parsing the ~1 MB bodies it receives
    counts neither toward the sender's time nor its peak RSS (a real provider is elsewhere)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")  # before the application is imported: small
        FakeSendGrid.requests = ctx.Value("q", 0)
        FakeSendGrid.recipients = ctx.Value("q", 0)
        server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSendGrid)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.process = ctx.Process(target=server.serve_forever, daemon=True)
        self.process.start()
        server.server_close()  # the child serves; the parent keeps no socket open

    @property
    def requests(self) -> int:
        return int(FakeSendGrid.requests.value)

    @property
    def recipients(self) -> int:
        return int(FakeSendGrid.recipients.value)

    def reset(self) -> None:
        with FakeSendGrid.requests.get_lock():
            FakeSendGrid.requests.value = FakeSendGrid.recipients.value = 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


def make_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("email,first_name,symptoms,timezone,consent,consent_at,source\n")
        for i in range(rows):
            fh.write(
                f"person{i}@example.com,Person{i},{SYMPTOMS[i % len(SYMPTOMS)]},Europe/London,yes,,bench\n"
            )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_path(
    path: str, rows: int, url: str, workdir: Path, fake: FakeServer, *, import_only: bool
) -> dict[str, Any]:
    os.environ["CLINICMAIL_DATABASE_URL"] = url
    from app.context import AppContext
    from app.onboarding import confirmed
    from app.settings import load_settings
    from subscribers.importer import Importer

    ctx = AppContext.from_settings(load_settings())
    ctx.db.migrate()
    # The service loads its catalog once at start-up. Loaded first inside the importer's write
    # transaction instead, SQLite's lock would make it fall back to reading the folder and the
    # measured tick would re-seed and re-parse the whole library (a start-up cost, ~1 s).
    assert ctx.catalog.campaigns
    csv_path = workdir / f"people-{path}.csv"
    make_csv(csv_path, rows)

    started = time.perf_counter()
    cpu = time.process_time()
    summary = Importer(ctx.db, NOW).run(
        csv_path,
        on_chunk=lambda conn, people: confirmed(conn, ctx.catalog, people, NOW, staff_email=None),
    )
    import_s = time.perf_counter() - started
    import_cpu = time.process_time() - cpu
    figures: dict[str, Any] = {
        "rows": rows,
        "database": url.split(":", 1)[0],
        "import_seconds": round(import_s, 2),
        "import_rows_per_second": round(rows / import_s),
        # this process's own CPU time: on a shared machine the wall clock also counts the
        # time other processes had the cores (the SQLite work is in-process, PostgreSQL's not)
        "import_cpu_seconds": round(import_cpu, 2),
        "import_rows_per_cpu_second": round(rows / import_cpu),
        "import_peak_rss_mb": round(peak_rss_mb(), 1),
        "imported": summary.imported,
    }
    if import_only:
        ctx.close()
        return figures
    ctx.close()
    fake.reset()
    # The tick runs in a process of its own, as `clinicmail tick` or the scheduler would: its
    # peak RSS is the sending process's own, not the importer's.
    child = subprocess.run(  # noqa: S603 - this script
        [sys.executable, __file__, "--send-only", "--path", path, "--database-url", url],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    sent = json.loads(child.stdout)
    figures.update(
        {
            "path": path,
            "tick_seconds": sent["tick_seconds"],
            "emails_sent": sent["emails_sent"],
            "emails_per_second": round(sent["emails_sent"] / sent["tick_seconds"])
            if sent["tick_seconds"]
            else None,
            "sendgrid_requests": fake.requests,
            "recipients_seen_by_fake_sendgrid": fake.recipients,
            "peak_rss_mb": sent["peak_rss_mb"],
        }
    )
    return figures


def send_only(path: str, url: str) -> dict[str, Any]:
    """The sending process: start as the service does (settings, schema check, catalog), then
    one timed tick."""
    os.environ["CLINICMAIL_DATABASE_URL"] = url
    from app.context import AppContext
    from app.settings import load_settings
    from scheduler.tick import make_dispatcher, run_tick

    ctx = AppContext.from_settings(load_settings())
    ctx.db.migrate()
    assert ctx.catalog.campaigns
    dispatcher = make_dispatcher(ctx)
    dispatcher.per_recipient = path == "per-recipient"
    started = time.perf_counter()
    report = run_tick(ctx, NOW, dispatcher=dispatcher)
    tick_s = time.perf_counter() - started
    ctx.close()
    return {
        "tick_seconds": round(tick_s, 2),
        "emails_sent": report.delivery.sent,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--per-recipient-rows",
        type=int,
        default=None,
        help="rows for the per-recipient path (default: --rows)",
    )
    parser.add_argument(
        "--path", choices=["both", "batched", "per-recipient"], default="both", help="send path"
    )
    parser.add_argument("--database-url", default=None, help="default: fresh SQLite files")
    parser.add_argument("--import-only", action="store_true", help="measure the import alone")
    parser.add_argument("--send-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send_only:  # the child process run_path starts for the tick
        print(json.dumps(send_only(args.path, args.database_url)))
        return
    paths = ["batched", "per-recipient"] if args.path == "both" else [args.path]
    if args.import_only:
        paths = ["batched"]
    if args.database_url and len(paths) > 1:
        parser.error("with --database-url choose one --path (each path needs an empty database)")

    workdir = Path(tempfile.mkdtemp(prefix="clinicmail-bench-"))
    fake = FakeServer()
    os.environ.update(
        CLINICMAIL_TRANSPORT="sendgrid",
        SENDGRID_API_KEY="SG.bench",
        CLINICMAIL_SENDGRID_HOST=fake.url,
    )
    results: dict[str, Any] = {}
    for path in paths:
        rows = args.rows
        if path == "per-recipient" and args.per_recipient_rows:
            rows = args.per_recipient_rows
        url = args.database_url or f"sqlite:///{workdir / f'bench-{path}.db'}"
        results[path] = run_path(path, rows, url, workdir, fake, import_only=args.import_only)
    fake.stop()
    print(json.dumps(results if len(results) > 1 else results[paths[0]], indent=2))


if __name__ == "__main__":
    main()
