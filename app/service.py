"""The long-running service: APScheduler ticks (it never holds individual sends) and the web app.

Fixed-id jobs only (docs/architecture.md, invariant 1): ``plan-and-dispatch`` every minute
(``CLINICMAIL_TICK_SECONDS``), ``webhooks`` every few seconds, ``housekeeping`` hourly and, with a
bounce mailbox, ``bounces`` every minute. ``coalesce`` turns a backlog of missed runs (after
downtime) into one catch-up run; ``max_instances=1`` stops a slow tick from overlapping the next
one.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import FrameType
from urllib.parse import urlsplit

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from app.context import AppContext
from app.entry import long_lived
from scheduler.tick import run_tick

log = logging.getLogger("clinicmail.service")
TICK_SECONDS = 60  # the default of CLINICMAIL_TICK_SECONDS
WEBHOOK_SECONDS = 5  # outgoing webhooks between ticks: a red flag should not wait a minute
BOUNCE_SECONDS = 60  # the bounce mailbox, in its own job: a slow server never delays a send


def webhooks_job(ctx: AppContext) -> None:
    from outgoing.posting import deliver_due

    try:
        deliver_due(ctx.db, datetime.now(UTC))
    except Exception as exc:
        log.error("webhook delivery failed: %s", type(exc).__name__)


def bounces_job(ctx: AppContext) -> None:
    from engagement.bounce_mailbox import read_bounces

    # never raises; a broken mailbox is an ERROR line
    read_bounces(ctx.db, ctx.settings.bounce_mailbox, datetime.now(UTC))


def tick_job(ctx: AppContext) -> None:
    _, metrics = ctx.metrics
    started = time.monotonic()
    try:
        # The bounce mailbox has its own job (below): a slow IMAP server never delays a send.
        report = run_tick(ctx, datetime.now(UTC), bounces=False)
        d = report.delivery
        metrics.observe(
            {"sent": d.sent, "failed": d.failed, "retried": d.retried, "unknown": d.unknown},
            started,
        )
        if report.planned or report.delivery.sent or report.delivery.failed:
            log.info(
                "tick: planned=%d sent=%d failed=%d",
                report.planned,
                report.delivery.sent,
                report.delivery.failed,
            )
    except Exception as exc:  # a failing tick must not kill the scheduler; the next one retries
        metrics.failed(started)
        log.error("tick failed: %s", type(exc).__name__)


def housekeeping_job(ctx: AppContext) -> None:
    from app.privacy import drop_events
    from subscribers import held
    from subscribers.housekeeping import expire_unconfirmed
    from subscribers.privacy import finish_pending_scrub

    days = ctx.settings.retain_unconfirmed_days
    try:
        with ctx.db.begin() as conn:
            # Their stored events (the confirmation email's delivery, opens …) go with them.
            expired = expire_unconfirmed(
                conn, datetime.now(UTC), on_expire=drop_events, ttl=timedelta(days=days)
            )
            held.expire(conn, datetime.now(UTC))  # held signups nobody confirmed in time
        if expired:
            log.info(
                "housekeeping: deleted %d unconfirmed signups older than %d days", expired, days
            )
        if finish_pending_scrub(ctx.db) is False:
            log.warning("an erasure is not final on disk yet: a reader holds the database open")
    except Exception as exc:
        log.error("housekeeping failed: %s", type(exc).__name__)
    # List health on its own: a failure above must not stop the complaint check and the sunset.
    from app.listhealth import housekeeping as list_health

    try:
        list_health(ctx, datetime.now(UTC))
    except Exception as exc:
        log.error("list-health housekeeping failed: %s", type(exc).__name__)
    # What the retention settings say has been kept long enough (docs/privacy.md).
    from scheduler.retention import trim

    try:
        with ctx.db.begin() as conn:
            trimmed = trim(conn, ctx.settings, datetime.now(UTC))
        if any(vars(trimmed).values()):
            log.info(
                "housekeeping: emptied %d event payloads, deleted %d outbox messages and %d "
                "sign-in attempts past their retention",
                trimmed.event_payloads,
                trimmed.outbox_messages,
                trimmed.login_attempts,
            )
    except Exception as exc:
        log.error("retention housekeeping failed: %s", type(exc).__name__)
    # Staff console sessions past their idle or absolute timeout.
    from staff.sessions import purge_expired

    try:
        with ctx.db.begin() as conn:
            purge_expired(conn, datetime.now(UTC))
    except Exception as exc:
        log.error("session housekeeping failed: %s", type(exc).__name__)


def make_scheduler(ctx: AppContext) -> BackgroundScheduler:
    sched = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 15 * 60},
    )
    sched.add_job(
        tick_job,
        "interval",
        seconds=ctx.settings.tick_seconds,
        args=[ctx],
        id="plan-and-dispatch",
        name="plan and dispatch due email",
        replace_existing=True,
        next_run_time=datetime.now(UTC),
    )
    sched.add_job(
        webhooks_job,
        "interval",
        seconds=WEBHOOK_SECONDS,
        args=[ctx],
        id="webhooks",
        name="deliver outgoing webhooks",
        replace_existing=True,
    )
    if ctx.settings.bounce_mailbox is not None:
        sched.add_job(
            bounces_job,
            "interval",
            seconds=BOUNCE_SECONDS,
            args=[ctx],
            id="bounces",
            name="read SMTP bounces from the bounce mailbox",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
    sched.add_job(
        housekeeping_job,
        "interval",
        hours=1,
        args=[ctx],
        id="housekeeping",
        name="expire unconfirmed signups",
        replace_existing=True,
    )
    return sched


def run_scheduler_only(ctx: AppContext) -> None:
    """Run only the scheduler until SIGTERM/SIGINT; the tick in flight finishes first."""
    warn_if_awaiting_review(ctx)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the current tick", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sched = make_scheduler(ctx)
    sched.start()
    log.info("scheduler running (tick every %ds)", ctx.settings.tick_seconds)
    stop.wait()
    sched.shutdown(wait=True)


def port_problem(host: str, port: int) -> str | None:
    """Why ``serve`` could not listen on ``host:port`` (None: it can), checked before anything
    else starts, so a second ``make run`` does not tick the scheduler and then die."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except (socket.gaierror, UnicodeError):
        return f"cannot listen on {host}: not a known host name or address"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use (is clinicmail already running?); "
                    f"use another port: PORT={port + 1} make run, or clinicmail serve --port "
                    f"{port + 1}"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})  # noqa: S104


def base_url_problem(base_url: str, host: str, port: int) -> str | None:
    """A base URL that names this machine on another port than the one served: every link in
    every email would point where nothing answers (``make run PORT=8300`` with the default base
    URL). A public base URL (behind a reverse proxy) is never second-guessed."""
    parts = urlsplit(base_url)
    if parts.hostname not in LOCAL_HOSTS | {host}:
        return None
    try:
        linked = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if linked == port:
        return None
    shown = f"[{host}]" if ":" in host else host
    return (
        f"CLINICMAIL_BASE_URL is {base_url} but this serves port {port}: links in emails would "
        f"point at port {linked}; set CLINICMAIL_BASE_URL=http://{shown}:{port}"
    )


def warn_if_webhook_closed(ctx: AppContext) -> None:
    """Sending through SendGrid without the webhook key means bounces, spam reports and
    unsubscribes are refused (and so never applied): say so once, at start."""
    s = ctx.settings
    if s.transport == "sendgrid" and not s.sendgrid_webhook_public_key:
        log.warning(
            "SendGrid events are refused (403) until CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY is "
            "set: bounces, spam reports and unsubscribes reported by SendGrid are not applied"
        )
    if s.transport == "smtp" and s.bounce_mailbox is None:
        log.warning(
            "SMTP bounces are not read until CLINICMAIL_BOUNCE_MAILBOX is set: addresses that "
            "bounce keep being mailed"
        )


def warn_if_awaiting_review(ctx: AppContext) -> None:
    """Say once, at start, when campaign content waits for a clinician's approval (and so,
    through sendgrid or smtp, sends nothing): see campaigns.review."""
    from app.approvals import gate_notice

    _ = ctx.catalog  # a new database gets the library first
    notice = gate_notice(ctx)
    if notice is not None:
        log.warning(notice)


def serve(ctx: AppContext, host: str, port: int, *, scheduler: bool = True) -> None:
    with long_lived():
        from app.http import create_app

    warn_if_webhook_closed(ctx)
    warn_if_awaiting_review(ctx)
    sched = make_scheduler(ctx) if scheduler else None

    def start() -> None:
        if sched is not None:
            sched.start()

    def stop() -> None:
        if sched is not None:
            sched.shutdown(wait=True)  # uvicorn calls this on SIGTERM/SIGINT

    with long_lived():  # the routes and their schemas: built once, kept for the process
        app = create_app(ctx, lifespan_hooks=(start, stop))
    # Access logs are off: link paths carry signed tokens, which are credentials.
    # proxy_headers off: uvicorn would trust X-Forwarded-For from any loopback peer; the app
    # trusts CLINICMAIL_TRUSTED_PROXIES only (app.http).
    # log_config=None: uvicorn keeps its hands off logging, so its lines reach the root
    # handler that app.logs set up (same format, same redaction).
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # uvicorn sets its own loggers to this level: CLINICMAIL_LOG_LEVEL governs its lines too
        log_level=ctx.settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,
        log_config=None,
        server_header=False,
    )
    _QuietServer(config).run()


class _QuietServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, so the process would die with
    -15; for an operator (and systemd) a requested stop is a clean exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        original = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in original.items():
                signal.signal(s, handler)
