"""Body limits under load (not a test; prints numbers).

    python bench/bodylimit.py [--size-mb 400] [--parallel 2] [--path /webhooks/sendgrid]

Starts `clinicmail serve --no-scheduler` as a real separate process on a scratch SQLite
database, reads its resident memory (VmRSS), then posts PARALLEL chunked bodies of SIZE_MB each
at once, as fast as the sockets take them, and reports for each post the answer's status and
how much had been sent when the answer came; then the server's memory again, right after and
two seconds later. With the limit enforced while bodies stream, every post is answered 413
after the route's limit (4 MiB for the webhook, 64 KiB for signups) and memory barely moves.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.memory import rss_mb
from tests.support.http_edge import post_chunked

MB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=400)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--path", default="/webhooks/sendgrid")
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("clinicmail"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICMAIL_")}
        env["CLINICMAIL_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
        subprocess.run(  # noqa: S603 - our own console script
            [exe, "init"], env=env, cwd=tmp, check=True, capture_output=True
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(  # noqa: S603 - our own console script
            [exe, "serve", "--no-scheduler", "--port", str(port)],
            env=env,
            cwd=tmp,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            time.sleep(0.5)
            before = rss_mb(server.pid)
            results: list[tuple[int, int, float]] = []

            def one() -> None:
                started = time.monotonic()
                status, sent = post_chunked(port, args.path, args.size_mb * MB)
                results.append((status, sent, time.monotonic() - started))

            threads = [threading.Thread(target=one) for _ in range(args.parallel)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            after = rss_mb(server.pid)
            time.sleep(2)
            settled = rss_mb(server.pid)
            healthy = httpx.get(f"http://127.0.0.1:{port}/healthz").status_code
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    print(f"{args.parallel} parallel chunked posts of {args.size_mb} MB to {args.path}")
    for status, sent, seconds in results:
        print(f"  answered {status} after {sent / MB:.1f} MB sent, in {seconds:.2f} s")
    print(
        f"server RSS: before {before:.0f} MB, right after {after:.0f} MB, 2 s later {settled:.0f} MB"
    )
    print(f"/healthz afterwards: {healthy}")


if __name__ == "__main__":
    main()
