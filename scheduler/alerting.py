"""The one deliverer of ops alerts (:mod:`alerts`): pending alerts go to CLINICMAIL_STAFF_EMAIL
through the transport, outside the send ledger, each rendered as its ops email says
(:mod:`templates.system`), oldest first.

An alert the provider accepts is delivered; one it refuses for good is dropped (logged); a
transport that fails for now (it raised, or answered "try later") ends the pass and the alert is
tried again on the next. With the transport breaker (:mod:`scheduler.breaker`) the deliverer is
also the probe: an accepted alert ends a failure incident, and a refusal of the account or
configuration pauses sending for everyone. Without a staff address there is nobody to tell: the
ERROR line each producer logs must do, and the alert is settled unsent.

The tick calls it before claiming subscriber email (alerts go first) and again at its end (for
alerts raised during the pass); the hourly housekeeping run and ``webhooks deliver`` call it for
the alerts they raise.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from alerts import queue
from scheduler.breaker import TransportBreaker
from scheduler.runtime import Runtime
from storage import Database
from templates import Renderer
from templates.system import render_system, system_email
from transports import Batch, Outcome, Transport

log = logging.getLogger("clinicmail.alerts")


@dataclass
class AlertReport:
    requests: int = 0
    sent: Counter[str] = field(default_factory=Counter)  # kind -> alerts the provider accepted
    paused: str | None = None  # the provider refused the account: what to fix


@dataclass
class AlertDeliverer:
    db: Database
    transport: Transport
    renderer: Renderer
    staff_email: str | None
    from_email: str
    from_name: str
    health: TransportBreaker | None = None

    def deliver(self, now: datetime) -> AlertReport:
        report = AlertReport()
        if self.health is not None and self.health.backed_off_until(now) is not None:
            return report  # the transport is failing: the first request after the back-off
        with self.db.begin() as conn:
            waiting = queue.pending(conn)
        for alert in waiting:
            to = alert.variables.get("to") if system_email(alert.kind).addressed else None
            to = to or self.staff_email
            if not to:
                with self.db.begin() as conn:
                    queue.delivered(conn, [alert.id], queue.UNADDRESSED, now)
                continue
            rendered = render_system(
                self.renderer, alert.kind, {"transport": self.transport.name, **alert.variables}
            )
            batch = Batch.staff_alert(
                rendered,
                alert=alert.kind,
                send_id=alert.alert_id,
                to=to,
                from_email=self.from_email,
                from_name=self.from_name,
            )
            report.requests += 1
            try:
                results = self.transport.send(batch)
            except Exception as exc:
                log.error("%s not sent: transport raised %s", alert.kind, type(exc).__name__)
                self._again(alert)
                return report
            outcomes = {r.outcome for r in results}
            if Outcome.SENT in outcomes:
                with self.db.begin() as conn:
                    queue.delivered(conn, [alert.id], queue.SENT, now)
                report.sent[alert.kind] += 1
                if self.health is not None:
                    self.health.record(results, now)  # the transport works: the incident ends
                continue
            account = next((r for r in results if r.outcome is Outcome.ACCOUNT), None)
            if account is not None:  # still refused: stay paused, nothing else is tried
                self._again(alert)
                if self.health is not None:
                    report.paused = (
                        account.fix or f"the {self.transport.name} transport refused the account"
                    )
                    self.health.pause(report.paused, account.error or "refused", now)
                return report
            if outcomes & {Outcome.FAILED, Outcome.REJECTED}:
                log.error("the transport refused the %s for good; not retried", alert.kind)
                with self.db.begin() as conn:
                    queue.delivered(conn, [alert.id], queue.REFUSED, now)
                continue
            self._again(alert)  # RETRY or UNKNOWN: the next pass tries again
            return report
        return report

    def _again(self, alert: queue.Alert) -> None:
        with self.db.begin() as conn:
            queue.attempted(conn, [alert.id])


def deliverer(ctx: Runtime, *, health: bool = True) -> AlertDeliverer:
    """The deliverer as the composition root configures it (with the shared breaker)."""
    s = ctx.settings
    transport = ctx.transport
    return AlertDeliverer(
        db=ctx.db,
        transport=transport,
        renderer=ctx.renderer,
        staff_email=s.staff_email,
        from_email=s.from_email,
        from_name=s.clinic_name,
        health=TransportBreaker(ctx.db, transport.name, s.staff_email) if health else None,
    )
