"""Prometheus metrics at ``GET /metrics``: what ops need to see the service is healthy.

Figures are read from the database at scrape time (the ledger by status, the ready queue, the
webhook queue, subscribers by status, suppressions), so every process behind a load balancer
reports the same truth and nothing is lost when the scheduler restarts. The scheduler process
adds its own tick counters. No metric has a label that could hold personal or health data:
labels are statuses and outcomes from fixed vocabularies.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from campaigns.ledger import count_ready
from campaigns.ledger_reads import by_status as ledger_by_status
from engagement.tables import email_events
from scheduler.breaker import KEY as BREAKER_KEY
from scheduler.breaker import BreakerState
from scheduler.setaside import KEY as SETASIDE_KEY
from scheduler.setaside import SetAsideState
from storage import Database, kvstate
from subscribers.tables import subscribers, suppressions


class DatabaseCollector(Collector):
    """Gauges computed by a few aggregate queries per scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("clinicmail_database_up", "1 when the database answers")
        try:
            with self.db.engine.connect() as conn:
                by_status = ledger_by_status(conn)
                ready = count_ready(conn, datetime.now(UTC))
                pending_events = conn.execute(
                    select(func.count())
                    .select_from(email_events)
                    .where(email_events.c.applied_at.is_(None))
                ).scalar_one()
                people = conn.execute(
                    select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
                ).all()
                suppressed = conn.execute(
                    select(func.count()).select_from(suppressions)
                ).scalar_one()
                health = BreakerState.load(kvstate.read(conn, BREAKER_KEY))
                held = len(SetAsideState.load(kvstate.read(conn, SETASIDE_KEY)).emails)
        except Exception:  # a scrape must answer even when the database does not
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _by_status("clinicmail_sends", "Emails in the send ledger by status", by_status)
        yield GaugeMetricFamily(
            "clinicmail_sends_ready", "Ledger rows that may be claimed now", value=ready
        )
        yield GaugeMetricFamily(
            "clinicmail_webhook_events_pending",
            "Stored provider events not applied yet",
            value=pending_events,
        )
        yield _by_status("clinicmail_subscribers", "Subscribers by status", people)
        yield GaugeMetricFamily(
            "clinicmail_suppressions", "Hashed addresses on the suppression list", value=suppressed
        )
        yield GaugeMetricFamily(
            "clinicmail_delivery_paused",
            "1 while the provider refuses the account or configuration (nothing goes out)",
            value=1 if health.paused else 0,
        )
        yield GaugeMetricFamily(
            "clinicmail_emails_set_aside",
            "Emails set aside because the provider refused their content",
            value=held,
        )


def _by_status(name: str, help_text: str, counts: Iterable[Any]) -> GaugeMetricFamily:
    """A gauge with one sample per ``(status, count)`` row."""
    gauge = GaugeMetricFamily(name, help_text, labels=["status"])
    for status, n in counts:
        gauge.add_metric([status], n)
    return gauge


class TickMetrics:
    """Counters the scheduler process updates after each tick."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.ticks = Counter(
            "clinicmail_ticks", "Planning-and-dispatch passes", ["result"], registry=registry
        )
        self.emails = Counter(
            "clinicmail_emails", "Emails by delivery outcome", ["outcome"], registry=registry
        )
        self.seconds = Histogram(
            "clinicmail_tick_seconds",
            "Time one tick took",
            buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300),
            registry=registry,
        )

    def observe(self, outcomes: dict[str, int], started: float) -> None:
        self.ticks.labels("ok").inc()
        self.seconds.observe(time.monotonic() - started)
        for outcome, n in outcomes.items():
            if n:
                self.emails.labels(outcome).inc(n)

    def failed(self, started: float) -> None:
        self.ticks.labels("error").inc()
        self.seconds.observe(time.monotonic() - started)


def make_registry(db: Database) -> tuple[CollectorRegistry, TickMetrics]:
    """A registry per app (not the global one) so tests and several apps never collide."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(DatabaseCollector(db))
    return registry, TickMetrics(registry)
