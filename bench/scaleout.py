"""Scale-out on one PostgreSQL: several scheduler processes and two web processes at once,
with no duplicate and no loss (not a test; prints JSON, exits 1 on a duplicate or a loss).

    python bench/scaleout.py [--postgres-url URL] [--subscribers 200000] [--schedulers 1,2,3]
                             [--signups-per-second 10] [--write docs/benchmarks.md]

``--postgres-url`` (or ``CLINICMAIL_BENCH_POSTGRES_URL``) names the server; the script creates
databases of its own beside the one named (``<name>_scaleout_*``) and drops them at the end.

1. Seed once, in a template database: ``clinicmail``'s schema, a clinician's approval of the
   bundled library (campaign email goes through SendGrid only once approved), and SUBSCRIBERS
   people imported through the real CSV importer with enrolment, so everyone's first email is
   due now.
2. For each K in ``--schedulers``, on a fresh copy of the template (``CREATE DATABASE …
   TEMPLATE``): start two ``clinicmail serve --no-scheduler`` and K ``clinicmail serve
   --scheduler-only`` processes, all sending through the real ``sendgrid`` client to one fake
   SendGrid on loopback that records every recipient. While the schedulers send, the web
   processes take a steady trickle of signups (``POST /api/subscribers``, each from its own
   client address behind a trusted proxy) and signed Event Webhook batches about emails already
   accepted.
3. Measure emails accepted per second, from the first accepted request to the one that
   completed the due emails; then check:

   * no duplicate: each ``send_id`` and each (recipient, campaign, step) reached the fake
     SendGrid once; the ledger holds one send per (person, campaign, step) at most;
   * no loss: every email due reached the fake SendGrid, the ledger shows every send as
     ``sent`` with exactly the ``send_id``\\ s the fake saw, every signup answered 202 is stored
     and its confirmation email went out, every webhook event answered 200 is stored.

``tests/test_scaleout.py`` runs the same code at a small size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXE = str(Path(sys.executable).with_name("clinicmail"))
SECTION = "Scale-out: several schedulers on one PostgreSQL"
REVIEWER = "scale-reviewer@clinic.example"
REVIEWER_PASSWORD = "a long clinician passphrase for the bench"  # noqa: S105 - a scratch database
SECRET = "scale-out-bench-secret-scale-out-bench-secret"  # noqa: S105 - a scratch database
SYSTEM_CAMPAIGN = "_system"
TICK_SECONDS = 2  # a scheduler that found nothing to claim looks again soon
MIN_SIGNUPS = 20  # the traffic lasts at least this many signups, however quick the sending
WEBHOOK_BATCH, WEBHOOK_EVERY = 500, 0.25  # Event Webhook posts: events each, seconds apart


# -- the fake SendGrid that records every recipient ----------------------------------------------
def fake_sendgrid(log_path: str, port_file: str) -> None:
    """Serve ``/v3/mail/send`` on a free loopback port (written to ``port_file``), answer 202 +
    X-Message-Id, and append one JSON line per request to ``log_path``:
    ``[accepted_at, [[send_id, to, campaign_id, step_id], …]]``. Runs as a process of its own
    (``--fake-sendgrid``) so parsing the ~1 MB bodies is not the senders' time."""
    lock = threading.Lock()
    out = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            args = body.get("custom_args", {})
            rows = [
                [
                    p["custom_args"]["send_id"],
                    p["to"][0]["email"],
                    args.get("campaign_id"),
                    args.get("step_id"),
                ]
                for p in body["personalizations"]
            ]
            with lock:
                count[0] += 1
                n = count[0]
                out.write(json.dumps([time.time(), rows]) + "\n")
                out.flush()
            self.send_response(202)
            self.send_header("X-Message-Id", f"scale{n}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = port_file + ".tmp"
    Path(tmp).write_text(str(server.server_address[1]), encoding="utf-8")
    os.replace(tmp, port_file)  # the port appears whole or not at all
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    out.close()


class FakeSendGrid:
    """The recording fake as a child process, and what it has recorded so far."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.log = workdir / f"{name}.jsonl"
        self.log.write_text("", encoding="utf-8")
        port_file = workdir / f"{name}.port"
        self.proc = subprocess.Popen(  # noqa: S603 - this script
            [sys.executable, __file__, "--fake-sendgrid", str(self.log), str(port_file)],
            cwd=workdir,
        )
        wait_for(lambda: port_file.exists(), 30, "the fake SendGrid did not start", self.proc)
        self.url = f"http://127.0.0.1:{port_file.read_text(encoding='utf-8')}"
        self._offset = 0
        self.requests: list[tuple[float, list[list[str]]]] = []

    def poll(self) -> list[list[str]]:
        """Read the requests recorded since the last call; returns their recipients."""
        new: list[list[str]] = []
        with self.log.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next call
        self._offset += end
        for line in data[:end].splitlines():
            at, rows = json.loads(line)
            self.requests.append((at, rows))
            new.extend(rows)
        return new

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# -- seeding the template database ---------------------------------------------------------------
def seed(url: str, subscribers: int, workdir: Path) -> dict[str, Any]:
    """Schema, the library approved by a clinician, SUBSCRIBERS people imported with enrolment
    (``--seed``: runs in a process of its own, with the environment ``_env`` gives)."""
    from sqlalchemy import text

    from app.approvals import ApprovalRefused
    from app.approvals import approve as give
    from app.context import AppContext
    from app.onboarding import confirmed
    from app.settings import load_settings
    from bench.run import make_csv
    from campaigns.review import Actor
    from staff import accounts
    from subscribers.importer import Importer

    ctx = AppContext.from_settings(load_settings())
    ctx.db.migrate()
    now = datetime.now(UTC)
    digest = accounts.new_password(REVIEWER, REVIEWER_PASSWORD)
    with ctx.db.begin() as conn:
        user = accounts.add_user(conn, REVIEWER, "clinician", digest, now)
    reviewer = Actor(user.id, user.email, user.role)  # the account just made, signed in
    approved = []
    for campaign_id in sorted(ctx.catalog.campaigns):
        try:
            give(ctx, campaign_id, reviewer, "scale-out bench", now)
            approved.append(campaign_id)
        except ApprovalRefused:
            pass  # nothing awaits review
    csv_path = workdir / "people.csv"
    make_csv(csv_path, subscribers)
    started = time.perf_counter()
    summary = Importer(ctx.db, now).run(
        csv_path,
        on_chunk=lambda conn, people: confirmed(conn, ctx.catalog, people, now, staff_email=None),
    )
    seconds = time.perf_counter() - started
    # A list at rest, as in service: vacuumed and analysed (the copies inherit the statistics).
    with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    ctx.close()
    return {
        "imported": summary.imported,
        "import_seconds": round(seconds, 1),
        "import_rows_per_second": round(subscribers / seconds),
        "approved": approved,
    }


# -- processes ------------------------------------------------------------------------------------
def wait_for(
    done: Callable[[], bool],
    timeout: float,
    what: str,
    *procs: subprocess.Popen[Any],
    every: float = 0.1,
) -> None:
    """Poll ``done`` until it holds; fail with ``what`` after ``timeout`` seconds or as soon as
    one of ``procs`` has exited."""
    deadline = time.monotonic() + timeout
    while not done():
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: a process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(every)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(url: str, workdir: Path, sendgrid_url: str, public_key: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CLINICMAIL_") and k != "SENDGRID_API_KEY"
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]),
        CLINICMAIL_DATABASE_URL=url,
        CLINICMAIL_DATA_DIR=str(workdir),
        CLINICMAIL_SECRET_KEY=SECRET,
        CLINICMAIL_TRANSPORT="sendgrid",
        SENDGRID_API_KEY="SG.scale-out",
        CLINICMAIL_SENDGRID_HOST=sendgrid_url,
        CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY=public_key,
        CLINICMAIL_FROM_EMAIL="care@clinic.example",
        CLINICMAIL_SEND_WINDOW="00:00-24:00",  # campaign email may go whatever the hour
        CLINICMAIL_TICK_SECONDS=str(TICK_SECONDS),
        # The signups come from many clients behind one reverse proxy on loopback.
        CLINICMAIL_TRUSTED_PROXIES="127.0.0.1",
        CLINICMAIL_LOG_LEVEL="INFO",
    )
    return env


@dataclass
class Processes:
    web: list[subprocess.Popen[bytes]] = field(default_factory=list)
    schedulers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)  # the schedulers' logs

    def all(self) -> list[subprocess.Popen[bytes]]:
        return [*self.web, *self.schedulers]

    def stop(self, procs: list[subprocess.Popen[bytes]]) -> list[int]:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # the tick in flight finishes first
        codes = []
        for p in procs:
            try:
                codes.append(p.wait(timeout=120))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        return codes


def _spawn(
    env: dict[str, str], workdir: Path, args: list[str], name: str
) -> subprocess.Popen[bytes]:
    """``clinicmail serve ARGS``, its log lines in ``workdir/NAME.log``."""
    with (workdir / f"{name}.log").open("wb") as fh:
        return subprocess.Popen([EXE, "serve", *args], env=env, cwd=workdir, stderr=fh)  # noqa: S603


def start_web(env: dict[str, str], workdir: Path, count: int = 2) -> Processes:
    procs = Processes()
    for n in range(count):
        port = _free_port()
        procs.ports.append(port)
        procs.web.append(_spawn(env, workdir, ["--no-scheduler", "--port", str(port)], f"web{n}"))
    return procs


def start_schedulers(procs: Processes, env: dict[str, str], workdir: Path, count: int) -> None:
    for n in range(count):
        procs.logs.append(workdir / f"scheduler{n}.log")
        procs.schedulers.append(_spawn(env, workdir, ["--scheduler-only"], f"scheduler{n}"))


def healthy(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- traffic on the web processes ----------------------------------------------------------------
class Traffic:
    """Signups at a steady rate and signed webhook batches about accepted emails, spread over
    the web processes, each in a thread of its own until :meth:`stop`."""

    def __init__(self, ports: list[int], signer: Any, rate: float, run: str) -> None:
        import httpx

        self.clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
        self.signer = signer
        self.rate = rate
        self.run = run
        self.accepted: list[str] = []  # signups answered 202
        self.refused: Counter[int] = Counter()  # other answers, by status
        self.events_posted: list[str] = []  # sg_event_ids answered 200
        self.webhook_refused: Counter[int] = Counter()
        self.outbox: list[list[str]] = []  # accepted emails since the last webhook batch
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._signups, daemon=True),
            threading.Thread(target=self._webhooks, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def sent(self, rows: list[list[str]]) -> None:
        with self.lock:
            self.outbox.extend(rows)

    def _signups(self) -> None:
        n = 0
        started = time.monotonic()
        while not self.stopping.is_set():
            email = f"signup-{self.run}-{n}@example.com"
            reply = self.clients[n % len(self.clients)].post(
                "/api/subscribers",
                json={
                    "email": email,
                    "first_name": "New",
                    "symptoms": ["neck", "desk_posture"],
                    "timezone": "Europe/London",
                    "consent": True,
                },
                # One client address per signup: the per-address signup limit is not measured.
                headers={"X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"},
            )
            if reply.status_code == 202:
                self.accepted.append(email)
            else:
                self.refused[reply.status_code] += 1
            n += 1
            # A steady rate, whatever each answer took.
            self.stopping.wait(max(0.0, started + n / self.rate - time.monotonic()))

    def _webhooks(self) -> None:
        """Every WEBHOOK_EVERY seconds, one signed batch: a ``delivered`` event for each email
        accepted since the last batch, the newest WEBHOOK_BATCH of them at most (a steady load
        on the web processes, not a replay of every email)."""
        from tests.support.signer import body_of

        n = 0
        while True:
            stopping = self.stopping.is_set()
            with self.lock:
                rows, self.outbox = self.outbox[-WEBHOOK_BATCH:], []
            if rows:
                events = []
                for send_id, email, campaign_id, _step in rows:
                    n += 1
                    events.append(
                        {
                            "email": email,
                            "timestamp": int(time.time()),
                            "event": "delivered",
                            "sg_event_id": f"scale-{self.run}-{n}",
                            "sg_message_id": f"{send_id}.filter0001.{n}",
                            "send_id": send_id,
                            "campaign_id": campaign_id,
                        }
                    )
                body = body_of(events)
                reply = self.clients[n % len(self.clients)].post(
                    "/webhooks/sendgrid", content=body, headers=self.signer.headers(body)
                )
                if reply.status_code == 200:
                    self.events_posted.extend(str(e["sg_event_id"]) for e in events)
                else:
                    self.webhook_refused[reply.status_code] += 1
            if stopping:
                return
            self.stopping.wait(WEBHOOK_EVERY)

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=120)

    def flush(self) -> None:
        """Post the webhook events for the emails accepted since :meth:`stop`."""
        self.stopping.set()
        self._webhooks()

    def close(self) -> None:
        self.stop()
        for c in self.clients:
            c.close()


# -- one run ---------------------------------------------------------------------------------------
def _db_url(base: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(base).set(database=name).render_as_string(hide_password=False)


def _due(url: str) -> set[str]:
    """The people whose first campaign email is due now (one each: the weekly cap)."""
    from sqlalchemy import create_engine, select

    from campaigns.tables import enrollments
    from subscribers.tables import subscribers

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(
                conn.execute(
                    select(subscribers.c.email_key)
                    .join(enrollments, enrollments.c.subscriber_id == subscribers.c.id)
                    .where(enrollments.c.status == "active")
                    .where(enrollments.c.next_due_at <= datetime.now(UTC))
                ).scalars()
            )
    finally:
        engine.dispose()


def _ledger(url: str, run: str) -> dict[str, Any]:
    """What the database holds after a run: the ledger, the signups and the events."""
    from sqlalchemy import create_engine, func, select

    from campaigns.ledger import sends
    from engagement.tables import email_events
    from subscribers.tables import subscribers

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            statuses = {
                str(status): int(n)
                for status, n in conn.execute(
                    select(sends.c.status, func.count()).group_by(sends.c.status)
                )
            }
            doubled = conn.execute(
                select(func.count()).select_from(
                    select(sends.c.subscriber_id, sends.c.campaign_id, sends.c.step_id)
                    .group_by(sends.c.subscriber_id, sends.c.campaign_id, sends.c.step_id)
                    .having(func.count() > 1)
                    .subquery()
                )
            ).scalar_one()
            sent_ids = set(
                conn.execute(select(sends.c.send_id).where(sends.c.status == "sent")).scalars()
            )
            signups = set(
                conn.execute(
                    select(subscribers.c.email_key).where(
                        subscribers.c.email_key.like(f"signup-{run}-%")
                    )
                ).scalars()
            )
            events = set(
                conn.execute(
                    select(email_events.c.sg_event_id).where(
                        email_events.c.sg_event_id.like(f"scale-{run}-%")
                    )
                ).scalars()
            )
    finally:
        engine.dispose()
    return {
        "statuses": statuses,
        "doubled": doubled,
        "sent_ids": sent_ids,
        "signups": signups,
        "events": events,
    }


def _per_scheduler(logs: list[Path]) -> list[int]:
    """Emails each scheduler reports sent (its ``tick: … sent=N`` lines)."""
    return [
        sum(int(m) for m in re.findall(r"tick: planned=\d+ sent=(\d+)", log.read_text("utf-8")))
        for log in logs
    ]


def run_once(
    url: str,
    schedulers: int,
    workdir: Path,
    *,
    rate: float,
    timeout: float,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """K schedulers and two web processes on the seeded database ``url``; the figures and the
    duplicate and loss checks."""
    from tests.support.signer import Signer

    run = f"k{schedulers}"
    clock = time.time()
    phases: dict[str, float] = {}  # seconds since the run began, at each step

    def phase(name: str) -> None:
        phases[name] = round(time.time() - clock, 1)

    due = _due(url)
    here = workdir / run
    here.mkdir()
    fake = FakeSendGrid(here, "sendgrid")
    signer = Signer()
    env = _env(url, workdir, fake.url, signer.public_key)
    procs = start_web(env, here)
    traffic: Traffic | None = None
    seen: Counter[str] = Counter()  # due campaign emails seen, by recipient
    try:
        wait_for(lambda: all(healthy(p) for p in procs.ports), 120, "web not healthy", *procs.all())
        # The traffic runs from before the schedulers start until they have sent everything
        # due (and for at least MIN_SIGNUPS signups).
        traffic = Traffic(procs.ports, signer, rate, run)
        phase("web_answering")
        started_at = time.time()
        start_schedulers(procs, env, here, schedulers)
        say(f"{schedulers} scheduler(s): {len(due):,} due, web traffic on, schedulers started")
        done_at: list[float] = []

        def all_due_seen() -> bool:
            rows = fake.poll()
            traffic.sent(rows)
            seen.update(r[1] for r in rows if r[2] != SYSTEM_CAMPAIGN)
            if not done_at and len(seen) >= len(due):
                done_at.append(fake.requests[-1][0])
            return bool(done_at) and len(traffic.accepted) >= MIN_SIGNUPS

        wait_for(all_due_seen, timeout, "not every due email was sent in time", *procs.all())
        phase("due_accepted")
        say(f"{schedulers} scheduler(s): every due email accepted; stopping the traffic")
        # The traffic went on while the schedulers sent; it stops now, and every confirmation
        # email a signup queued must still go out (the schedulers tick every few seconds).
        traffic.stop()

        def confirmations_out() -> bool:
            traffic.sent(fake.poll())
            to = {r[1] for _, rows in fake.requests for r in rows if r[2] == SYSTEM_CAMPAIGN}
            return set(traffic.accepted) <= to

        wait_for(confirmations_out, 60, "a signup's confirmation did not go out", *procs.all())
        phase("confirmations_accepted")
        traffic.flush()
        traffic.close()  # no keep-alive connection left for the web processes to wait on
        codes = procs.stop(procs.all())
        phase("stopped")
        say(f"{schedulers} scheduler(s): stopped; checking")
    except BaseException:
        procs.stop(procs.all())
        raise
    finally:
        if traffic is not None:
            traffic.close()
        fake.stop()
    fake.poll()
    db = _ledger(url, run)
    phase("checked")

    recipients = [r for _, rows in fake.requests for r in rows]
    by_send = Counter(r[0] for r in recipients)
    by_step = Counter((r[1], r[2], r[3]) for r in recipients)
    campaign_to = Counter(r[1] for r in recipients if r[2] != SYSTEM_CAMPAIGN)
    confirmations = {r[1] for r in recipients if r[2] == SYSTEM_CAMPAIGN}
    # From the first request carrying a due email to the one that completed them (not from a
    # confirmation email that went out while the planner was still at work).
    first = min(at for at, rows in fake.requests if any(r[1] in due for r in rows))
    seconds = done_at[0] - first
    checks = {
        "send_id_twice": sum(1 for c in by_send.values() if c > 1),
        "recipient_step_twice": sum(1 for c in by_step.values() if c > 1),
        "ledger_step_twice": db["doubled"],
        "due_not_sent": len(due - set(campaign_to)),
        "campaign_email_not_due": len(set(campaign_to) - due),
        "ledger_not_sent": sum(n for s, n in db["statuses"].items() if s != "sent"),
        "ledger_sent_not_seen": len(db["sent_ids"] - set(by_send)),
        "seen_not_ledger_sent": len(set(by_send) - db["sent_ids"]),
        "signup_not_stored": len(set(traffic.accepted) - db["signups"]),
        "signup_not_confirmed": len(set(traffic.accepted) - confirmations),
        "event_not_stored": len(set(traffic.events_posted) - db["events"]),
        "signup_refused": sum(traffic.refused.values()),
        "webhook_refused": sum(traffic.webhook_refused.values()),
        "process_exit_not_0": sum(1 for c in codes if c != 0),
    }
    result = {
        "schedulers": schedulers,
        "web_processes": len(procs.web),
        "due": len(due),
        "seconds": round(seconds, 2),
        "seconds_from_scheduler_start": round(done_at[0] - started_at, 2),
        "phases": phases,
        "emails_per_second": round(len(due) / seconds) if seconds > 0 else None,
        "requests": len(fake.requests),
        "recipients_seen": len(recipients),
        "sent_by_scheduler": _per_scheduler(procs.logs),
        "signups_accepted": len(traffic.accepted),
        "signup_answers_refused": dict(traffic.refused),
        "webhook_events_accepted": len(traffic.events_posted),
        "ledger_statuses": db["statuses"],
        "checks": checks,
        "ok": not any(checks.values()),
    }
    say(
        f"{schedulers} scheduler(s): {result['emails_per_second']:,}/s, "
        f"{'ok' if result['ok'] else 'FAILED'} {json.dumps(checks)}"
    )
    return result


def _server_version(url: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one()).split()[0]
    finally:
        engine.dispose()


def measure(
    postgres_url: str,
    subscribers: int,
    schedulers: list[int],
    *,
    rate: float = 10.0,
    timeout: float | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Seed once, then one run per count in ``schedulers``, each on a fresh copy of the seeded
    database (the seeded one itself when there is one run); drops every database it made."""
    from sqlalchemy.engine import make_url

    from tests.support.backends import admin_execute

    base = f"{make_url(postgres_url).database or 'clinicmail'}_scaleout"
    seeded_name = base if len(schedulers) == 1 else f"{base}_tpl"
    made = [seeded_name, *(f"{base}_k{k}" for k in schedulers if len(schedulers) > 1)]
    workdir = Path(tempfile.mkdtemp(prefix="clinicmail-scaleout-"))
    load = [round(x, 2) for x in os.getloadavg()]
    drop = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in made]
    admin_execute(postgres_url, *drop, f'CREATE DATABASE "{seeded_name}"')
    try:
        say(f"seeding {subscribers:,} subscribers")
        env = _env(_db_url(postgres_url, seeded_name), workdir, "http://127.0.0.1:9", "")
        clock = time.time()
        seeded = subprocess.run(  # noqa: S603 - this script
            [sys.executable, __file__, "--seed", str(subscribers), "--workdir", str(workdir)],
            env=env,
            cwd=workdir,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        figures: dict[str, Any] = {
            "subscribers": subscribers,
            "postgres": _server_version(_db_url(postgres_url, seeded_name)),
            "seed": {**json.loads(seeded), "seconds": round(time.time() - clock, 1)},
            "load_average_start": load,
            "runs": [],
        }
        for k in schedulers:
            name = seeded_name
            if len(schedulers) > 1:  # a fresh copy: CREATE DATABASE … TEMPLATE is a file copy
                name = f"{base}_k{k}"
                admin_execute(
                    postgres_url,
                    f'CREATE DATABASE "{name}" TEMPLATE "{seeded_name}" STRATEGY FILE_COPY',
                )
            figures["runs"].append(
                run_once(
                    _db_url(postgres_url, name),
                    k,
                    workdir,
                    rate=rate,
                    timeout=timeout or max(120.0, subscribers / 200),
                    say=say,
                )
            )
            if name != seeded_name:
                admin_execute(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin_execute(postgres_url, *drop)
    figures["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["ok"] = all(r["ok"] for r in figures["runs"])
    if figures["ok"]:
        shutil.rmtree(workdir)  # what the fake received, the processes' logs
    else:
        say(f"the fake SendGrid's records and the processes' logs are in {workdir}")
    return figures


# -- docs/benchmarks.md ----------------------------------------------------------------------------
def section(figures: dict[str, Any], command: str) -> str:
    from bench.delivery import _machine

    rows = [
        f"| {r['schedulers']} | {r['due']:,} | {r['seconds']:.1f} s | {r['emails_per_second']:,}/s "
        f"| {r['seconds_from_scheduler_start']:.1f} s "
        f"| {', '.join(f'{n:,}' for n in r['sent_by_scheduler'])} | {r['signups_accepted']:,} "
        f"| {r['webhook_events_accepted']:,} | {'none' if r['ok'] else 'FOUND'} |"
        for r in figures["runs"]
    ]
    one = next((r for r in figures["runs"] if r["schedulers"] == 1), None)
    ratios = (
        "; ".join(
            f"{r['schedulers']} schedulers: {r['emails_per_second'] / one['emails_per_second']:.2f}×"
            for r in figures["runs"]
            if r is not one
        )
        if one
        else ""
    )
    start, end = figures["load_average_start"], figures["load_average_end"]
    lines = [
        f"## {SECTION}",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}`.",
        "",
        f"Machine: {_machine()}; PostgreSQL {figures['postgres']} on the same machine. The",
        f"machine was shared with other work: load average (1, 5, 15 min) {start[0]}, {start[1]},",
        f"{start[2]} at the start and {end[0]}, {end[1]}, {end[2]} at the end, on "
        f"{os.cpu_count()} cores; every",
        "process of the run (schedulers, web processes, PostgreSQL, the fake SendGrid, the",
        "traffic) shares those cores, so more schedulers add contention as much as capacity.",
        "",
        f"{figures['subscribers']:,} people imported once (real CSV import with enrolment, "
        f"{figures['seed']['import_rows_per_second']:,} rows/s), each with a first email due.",
        "Each row is a fresh copy of that database with K `clinicmail serve --scheduler-only`",
        "and two `clinicmail serve --no-scheduler` processes on it, sending through the official",
        "`sendgrid` client to a fake SendGrid on loopback that records every recipient, with",
        f"`CLINICMAIL_TICK_SECONDS={TICK_SECONDS}`. From before the schedulers start until they",
        "have sent everything due, the web processes take a steady trickle of signups (each",
        "queues a confirmation email the schedulers send) and signed Event Webhook batches",
        "about the emails already accepted. Throughput: due emails over the time from the first",
        "accepted request carrying one to the request that completed them; the planner is one",
        "process at a time (an advisory lock), the others claim what it has planned.",
        "",
        "| schedulers | emails due | first → last due accepted | emails/s "
        "| schedulers' start → last due accepted | sent by each scheduler (with confirmations) "
        "| signups taken | webhook events taken | duplicate or loss |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *([f"Against one scheduler: {ratios}.", ""] if ratios else []),
        "Checked after each run (`bench/scaleout.py` exits 1 otherwise): each `send_id` and each",
        "(recipient, campaign, step) reached the fake SendGrid once, the ledger has one send per",
        "(person, campaign, step) at most; every due email was accepted, every ledger row is",
        "`sent` with exactly the `send_id`s the fake saw, every signup answered 202 is stored and",
        "its confirmation went out, every webhook event answered 200 is stored.",
        "`tests/test_scaleout.py` runs the same code with three schedulers at a small size.",
        "",
        "```json",
        json.dumps(figures, indent=1),
        "```",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    from bench.sections import write_scaleout

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres-url", default=os.environ.get("CLINICMAIL_BENCH_POSTGRES_URL"))
    parser.add_argument("--subscribers", type=int, default=200_000)
    parser.add_argument("--schedulers", default="1,2,3", help="scheduler counts, one run each")
    parser.add_argument("--signups-per-second", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per run")
    parser.add_argument("--write", default=None, help="replace this section of that file")
    parser.add_argument("--fake-sendgrid", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_sendgrid:
        fake_sendgrid(*args.fake_sendgrid)
        return
    if args.seed is not None:
        print(
            json.dumps(seed(os.environ["CLINICMAIL_DATABASE_URL"], args.seed, Path(args.workdir)))
        )
        return
    if not args.postgres_url:
        parser.error("give --postgres-url or set CLINICMAIL_BENCH_POSTGRES_URL")
    counts = [int(k) for k in args.schedulers.split(",")]
    figures = measure(
        args.postgres_url,
        args.subscribers,
        counts,
        rate=args.signups_per_second,
        timeout=args.timeout,
        say=lambda m: print(f"{datetime.now(UTC):%H:%M:%S} {m}", file=sys.stderr, flush=True),
    )
    print(json.dumps(figures, indent=2))
    if args.write:
        command = (
            f"bench/scaleout.py --subscribers {args.subscribers} --schedulers {args.schedulers}"
            f" --signups-per-second {args.signups_per_second:g}"
        )
        write_scaleout(Path(args.write), section(figures, command))
    if not figures["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
