"""`make bench`: measured figures for the import and the send path (not a test; prints numbers).

    python bench/run.py [--rows 100000] [--database-url URL]

1. CSV import of N generated rows: rows/second and peak memory (RSS).
2. One tick delivering N due first emails through the real `sendgrid` client to a local fake
   SendGrid (202 + X-Message-Id, on loopback): emails/second and requests made.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SYMPTOMS = ["lower_back;acute_spasm", "lower_back;sciatica", "neck;desk_posture", "mid_back", ""]


class FakeSendGrid(BaseHTTPRequestHandler):
    requests = 0
    recipients = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        FakeSendGrid.requests += 1
        FakeSendGrid.recipients += len(json.loads(body)["personalizations"])
        self.send_response(202)
        self.send_header("X-Message-Id", f"bench{FakeSendGrid.requests}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def make_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("email,first_name,symptoms,timezone,consent,consent_at,source\n")
        for i in range(rows):
            fh.write(
                f"person{i}@example.com,Person{i},{SYMPTOMS[i % len(SYMPTOMS)]},Europe/London,yes,,bench\n"
            )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--import-only", action="store_true", help="measure the import alone")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="clinicmail-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSendGrid)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ.update(
        CLINICMAIL_DATABASE_URL=url,
        CLINICMAIL_TRANSPORT="sendgrid",
        SENDGRID_API_KEY="SG.bench",
        CLINICMAIL_SENDGRID_HOST=f"http://127.0.0.1:{server.server_address[1]}",
    )
    from scheduler.context import AppContext
    from scheduler.onboarding import on_confirmed
    from scheduler.settings import load_settings
    from scheduler.tick import run_tick
    from subscribers.importer import Importer

    ctx = AppContext.from_settings(load_settings())
    ctx.db.migrate()
    csv_path = workdir / "people.csv"
    make_csv(csv_path, args.rows)
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    started = time.perf_counter()
    summary = Importer(ctx.db, now).run(
        csv_path,
        on_chunk=lambda conn, ids: on_confirmed(conn, ctx.catalog, ids, now, staff_email=None),
    )
    import_s = time.perf_counter() - started
    import_rss = peak_rss_mb()

    figures: dict[str, object] = {
        "rows": args.rows,
        "import_seconds": round(import_s, 2),
        "import_rows_per_second": round(args.rows / import_s),
        "import_peak_rss_mb": round(import_rss, 1),
        "imported": summary.imported,
    }
    if args.import_only:
        ctx.close()
        server.shutdown()
        print(json.dumps(figures, indent=2))
        return
    started = time.perf_counter()
    report = run_tick(ctx, now)
    tick_s = time.perf_counter() - started
    ctx.close()
    server.shutdown()
    figures = {
        "rows": args.rows,
        "database": url.split(":", 1)[0],
        "import_seconds": round(import_s, 2),
        "import_rows_per_second": round(args.rows / import_s),
        "import_peak_rss_mb": round(import_rss, 1),
        "imported": summary.imported,
        "tick_seconds": round(tick_s, 2),
        "emails_sent": report.delivery.sent,
        "emails_per_second": round(report.delivery.sent / tick_s) if tick_s else None,
        "sendgrid_requests": FakeSendGrid.requests,
        "recipients_seen_by_fake_sendgrid": FakeSendGrid.recipients,
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
