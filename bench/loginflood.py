"""A sign-in flood against a real server (not a test; prints numbers).

    python bench/loginflood.py [--clients 24] [--seconds 30] [--database-url URL]

Starts `clinicmail serve --no-scheduler` as a separate process (a scratch SQLite database
unless --database-url names another, e.g. a PostgreSQL scratch database), adds one staff
account, then runs CLIENTS threads for SECONDS, each fetching the sign-in form and posting a
wrong password as fast as it is answered (half aimed at the real account, half at made-up
addresses), while one more thread asks `/healthz` every 50 ms. It reports the sign-in answers
by status, `/healthz` latency (median, p99, max), every 5xx seen, and the server's resident
memory (VmRSS) before, at its peak and after. docs/security.md records the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.memory import rss_mb

ACCOUNT = "ops@clinic.example"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a scratch account


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("clinicmail"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICMAIL_")}
        env["CLINICMAIL_DATABASE_URL"] = args.database_url or f"sqlite:///{tmp}/bench.db"
        env["CLINICMAIL_DATA_DIR"] = tmp
        subprocess.run([exe, "init"], env=env, cwd=tmp, check=True, capture_output=True)  # noqa: S603
        subprocess.run(  # noqa: S603 - our own console script
            [exe, "users", "add", ACCOUNT, "--role", "ops"],
            input=PASSWORD + "\n",
            text=True,
            env=env,
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: S603 - our own console script
            [exe, "serve", "--no-scheduler", "--port", str(port)],
            env=env,
            cwd=tmp,
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            before = rss_mb(server.pid)
            peak = [before]
            statuses: Counter[int] = Counter()
            health: list[float] = []
            errors: Counter[str] = Counter()
            stop = time.monotonic() + args.seconds
            lock = threading.Lock()

            def flood(n: int) -> None:
                with httpx.Client(base_url=base, timeout=60) as client:
                    i = 0
                    while time.monotonic() < stop:
                        i += 1
                        try:
                            form = client.get("/admin/login")
                            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
                            email = ACCOUNT if i % 2 else f"visitor{n}-{i}@example.com"
                            answer = client.post(
                                "/admin/login",
                                data={
                                    "email": email,
                                    "password": "wrong password attempt",
                                    "csrf_token": token.group(1) if token else "",
                                },
                            )
                            with lock:
                                statuses[answer.status_code] += 1
                                if form.status_code >= 500:
                                    errors[f"GET /admin/login {form.status_code}"] += 1
                        except httpx.HTTPError as exc:
                            with lock:
                                errors[type(exc).__name__] += 1

            def probe() -> None:
                with httpx.Client(base_url=base, timeout=60) as client:
                    while time.monotonic() < stop:
                        started = time.monotonic()
                        answer = client.get("/healthz")
                        health.append(time.monotonic() - started)
                        if answer.status_code >= 500:
                            errors[f"/healthz {answer.status_code}"] += 1
                        peak[0] = max(peak[0], rss_mb(server.pid))
                        if os.environ.get("FLOOD_TRACE"):
                            print(
                                f"{time.monotonic():.1f} {rss_mb(server.pid):.0f} MB {dict(statuses)}"
                            )
                        time.sleep(0.05)

            threads = [threading.Thread(target=flood, args=(n,)) for n in range(args.clients)]
            threads.append(threading.Thread(target=probe))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            after = rss_mb(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    health.sort()
    p99 = health[min(len(health) - 1, int(len(health) * 0.99))]
    backend = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    print(f"{args.clients} clients for {args.seconds:.0f} s against {backend}")
    print(f"sign-in answers: {dict(sorted(statuses.items()))}")
    fives = sum(n for code, n in statuses.items() if code >= 500) + sum(errors.values())
    print(f"5xx and transport errors: {fives} {dict(errors)}")
    print(
        f"/healthz: {len(health)} probes, median {statistics.median(health) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {health[-1] * 1000:.0f} ms"
    )
    print(f"server RSS: before {before:.0f} MB, peak {peak[0]:.0f} MB, after {after:.0f} MB")


if __name__ == "__main__":
    main()
