"""Dispatch: claim ready ledger rows, re-check consent, render once per (step, variant), send.

Claiming is a short transaction with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` serialises writers). Rows are marked ``sending`` in their own commit just
before the transport is called, so after a crash we know which requests may have left.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection

from campaigns import ledger, ledger_reads
from campaigns.cadence import Cadence
from campaigns.ledger import (
    CAMPAIGN,
    FAILED,
    PENDING,
    RETRY,
    SENT,
    SYSTEM_CAMPAIGN,
    UNKNOWN,
)
from campaigns.loader import Catalog
from campaigns.rendering import render_variant
from engagement.tracking import EngagementLinks
from scheduler import setaside
from scheduler.alerting import AlertDeliverer
from scheduler.breaker import TransportBreaker
from scheduler.crashpoints import crash_point
from scheduler.ratelimit import TokenBucket
from storage import Database
from subscribers import held, store
from templates import Rendered, Renderer, fill
from templates.system import REGISTRY, STAFF, SystemEmail, render_system, system_email
from transports import Batch, Envelope, Outcome, Result, Transport

log = logging.getLogger("clinicmail.dispatch")

LEASE = timedelta(minutes=10)
HELD_RECHECK = timedelta(hours=1)  # content awaiting a clinician's approval: look again
CLAIM_BATCH = 1000
MAX_ATTEMPTS = 8


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    cancelled: int = 0
    requests: int = 0
    deferred: int = 0  # campaign email whose local window had closed by send time
    backed_off: bool = False  # the transport is failing: dispatch skipped or stopped early
    backoff_until: str | None = None
    # The provider refused the account or configuration: what to fix (sending is paused).
    paused: str | None = None
    waiting: int = 0  # sends handed back untouched (paused, or their email set aside)
    set_aside: int = 0  # emails (campaign, step, variant) newly set aside this pass

    def add(self, other: DispatchReport) -> None:
        for name in (
            "sent",
            "failed",
            "retried",
            "unknown",
            "cancelled",
            "requests",
            "deferred",
            "waiting",
            "set_aside",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.backed_off:
            self.backed_off, self.backoff_until = True, other.backoff_until
        if other.paused:
            self.paused = other.paused


@dataclass
class Claimed:
    id: int
    send_id: str
    subscriber_id: int
    campaign_id: str
    step_id: str
    variant_id: str
    kind: str
    attempts: int
    email: str = ""
    first_name: str | None = None
    public_id: str = ""
    timezone: str | None = None

    @property
    def system(self) -> str | None:
        """Which system email this is (None for campaign email). A system step id may name what
        it answers ("checkin-staff:<send_id>", so the ledger's unique key allows one per
        answered email); the email itself is the part before ":"."""
        if self.campaign_id != SYSTEM_CAMPAIGN:
            return None
        return self.step_id.partition(":")[0]

    @property
    def policy(self) -> SystemEmail | None:
        """The registry's entry for this system email (None for campaign email, and for a name
        the registry does not know: rendering such a row fails it)."""
        system = self.system
        return None if system is None else REGISTRY.get(system)


class _Person(NamedTuple):
    """What a claim re-checks and fills in about the person a row is for."""

    email: str
    email_key: str
    first_name: str | None
    public_id: str
    status: str
    red_flag: bool
    timezone: str | None


@dataclass
class LinkMaker:
    """Builds the per-recipient links; supplied by the composition root."""

    make: Callable[..., str]  # (purpose, public_id[, send_id]) -> URL
    record_url: Callable[[str], str]
    staff_email: str | None
    # Tracked links, the open pixel and check-in links of campaign email (engagement.tracking).
    engagement: EngagementLinks | None = None


@dataclass
class Dispatcher:
    db: Database
    catalog: Catalog
    renderer: Renderer
    transport: Transport
    links: LinkMaker
    from_email: str
    from_name: str
    list_domain: str
    _cache: dict[tuple[str, str, str], Rendered] = field(default_factory=dict)
    # Delivery controls, all optional: the shared transport circuit breaker, the send rate
    # limit, the send-time window re-check, and the per-recipient render path (one fully
    # rendered email per request, for templates that cannot use provider substitutions).
    health: TransportBreaker | None = None
    pacer: TokenBucket | None = None
    times: Cadence | None = None
    per_recipient: bool = False
    _held: list[tuple[str, str, str]] = field(default_factory=list)
    _later: list[Any] = field(default_factory=list)  # effects to run after a commit

    # -- claiming ---------------------------------------------------------------------------
    def recover(self, now: datetime) -> int:
        """Leases that ran out: claims go back to ``pending``; rows stuck in ``sending`` may
        have left and become ``unknown``. Returns how many became unknown."""
        with self.db.begin() as conn:
            return ledger.recover_expired(conn, now)[1]

    def claim(self, now: datetime, limit: int = CLAIM_BATCH) -> tuple[list[Claimed], int]:
        """Claim up to ``limit`` ready rows; returns them and how many were cancelled."""
        with self.db.begin() as conn:
            # The person rides along (a row whose person is gone is cancelled), so a claim is
            # one read, not a read of rows and then of their people.
            found = ledger_reads.claimable(conn, now, self._held, limit)
            if not found:
                return [], 0
            rows = [Claimed(*r[:8]) for r in found]
            people = {r[2]: _Person(*r[8:]) for r in found if r[8] is not None}
            suppressed = store.suppressed_keys(conn, {p.email_key for p in people.values()})
            keep: list[Claimed] = []
            cancel: list[tuple[int, str]] = []
            for row in rows:
                person = people.get(row.subscriber_id)
                reason = self._ineligible(row, person, suppressed)
                if reason:
                    cancel.append((row.id, reason))
                    continue
                assert person is not None
                row.email, row.first_name, row.public_id, row.timezone = (
                    person.email,
                    person.first_name,
                    person.public_id,
                    person.timezone,
                )
                keep.append(row)
            by_reason: dict[str, list[int]] = defaultdict(list)
            for row_id, reason in cancel:
                by_reason[reason].append(row_id)
            for reason, ids in by_reason.items():
                ledger.cancel(conn, ids, reason)
            ledger.claim(conn, [r.id for r in keep], now + LEASE)
            return keep, len(cancel)

    def _ineligible(self, row: Claimed, person: Any, suppressed: set[str]) -> str | None:
        """Consent and suppression are re-checked at claim time, every time."""
        if person is None:
            return "subscriber no longer exists"
        policy = row.policy
        if policy is not None and policy.audience == STAFF:
            # to the clinic's staff, whatever the person's own state
            return None if self.links.staff_email else "no staff address is configured"
        if person.email_key in suppressed:
            return "address is suppressed"
        if row.kind == CAMPAIGN:
            if person.status != store.CONFIRMED:
                return f"subscriber is {person.status}"
            if person.red_flag:
                return "red-flag subscribers get no educational email"
        elif not (policy and policy.asks_consent) and person.status == store.UNSUBSCRIBED:
            return "subscriber is unsubscribed"
        return None

    # -- rendering --------------------------------------------------------------------------
    def _rendered(self, row: Claimed) -> Rendered:
        system = row.system
        key = (row.campaign_id, system or row.step_id, row.variant_id)
        if key in self._cache:
            return self._cache[key]
        if system is not None:
            policy = system_email(system)  # KeyError: not a system email (the send fails)
            # What the registry says the email needs; its flags come from the row's variant.
            flags = {name: row.variant_id == name for name in policy.variables}
            rendered = render_system(self.renderer, policy.name, flags)
        else:
            campaign = self.catalog.get(row.campaign_id)
            if campaign is None:
                raise KeyError(f"campaign {row.campaign_id!r} is no longer in the library")
            variant = campaign.step(row.step_id).variant(row.variant_id)
            rendered = render_variant(self.renderer, campaign, variant)
            if self.links.engagement is not None:
                rendered = self.links.engagement.prepare(key, rendered)
        self._cache[key] = rendered
        return rendered

    def _envelope(self, row: Claimed) -> Envelope:
        values = {"first_name": row.first_name or "there"}
        headers: dict[str, str] = {}
        to = row.email
        system = row.system
        policy = row.policy
        if policy is not None and policy.audience == STAFF:
            to = self.links.staff_email or ""  # never the person: _ineligible saw to that
            values = {"first_name": "team"}
        if policy is None or policy.unsubscribe:
            # The links name this email, so an unsubscribe counts against its campaign and step.
            unsubscribe = self.links.make("unsubscribe", row.public_id, row.send_id)
            values["unsubscribe_url"] = unsubscribe
            values["preferences_url"] = self.links.make("preferences", row.public_id, row.send_id)
            headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        for link in policy.links if policy is not None else ():
            values[link] = self._link(link, row)
        if system is None and self.links.engagement is not None:
            key = (row.campaign_id, row.step_id, row.variant_id)
            values.update(
                self.links.engagement.values(key, row.send_id, self._rendered(row).fields)
            )
        return Envelope(
            send_id=row.send_id,
            to=to,
            subscriber_id=row.subscriber_id,
            values=values,
            headers=headers,
        )

    def _link(self, link: str, row: Claimed) -> str:
        """One per-recipient link a system email's registry entry names."""
        if link == "confirm_url":  # "confirm:<id>" confirms a held request (subscribers.held)
            held_id = row.step_id.partition(":")[2]
            subject = held.token_subject(held_id) if held_id else row.public_id
            return self.links.make("confirm", subject)
        if link == "record_url":
            return self.links.record_url(row.public_id)
        if link == "keep_url":  # the sunset policy's "keep me" link (engagement.sunset)
            return self.links.make("keep", row.public_id)
        raise KeyError(f"no per-recipient link {link!r}")

    def batch_for(self, rows: list[Claimed]) -> Batch:
        """The request ``rows`` (all of one campaign, step and variant) would make, exactly as a
        tick builds it; nothing is claimed or sent (the doctor's sample messages)."""
        first = rows[0]
        key = (first.campaign_id, first.step_id, first.variant_id)
        return self._batch(key, rows, self._rendered(first))

    def _batch(self, key: tuple[str, str, str], rows: list[Claimed], rendered: Rendered) -> Batch:
        campaign_id, step_id, _variant = key
        headers = {
            "List-Id": f"{campaign_id.strip('_')} <{campaign_id.strip('_')}.{self.list_domain}>"
        }
        recipients = [self._envelope(r) for r in rows]
        if recipients and "List-Unsubscribe" in recipients[0].headers:
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return Batch(
            rendered=rendered,
            from_email=self.from_email,
            from_name=self.from_name,
            category=campaign_id,
            custom_args={"campaign_id": campaign_id, "step_id": step_id},
            headers=headers,
            recipients=recipients,
        )

    # -- sending ----------------------------------------------------------------------------
    def run(self, now: datetime, *, max_rounds: int = 10_000) -> DispatchReport:
        report = DispatchReport()
        self.recover(now)
        self._held = setaside.held(self.db, self._version_of)
        if self.health is not None:
            until = self.health.backed_off_until(now)
            if until is not None:
                report.backed_off, report.backoff_until = True, until.isoformat()
                return report
        # Staff alerts go first. While paused for the account, the first alert (or the first
        # claim) is the one request that tells whether the fix was made.
        self.deliver_alerts(now, report)
        if report.paused:
            return report
        for _ in range(max_rounds):
            rows, cancelled = self.claim(now, self._claim_limit())
            report.cancelled += cancelled
            if not rows:
                if cancelled:
                    continue
                break
            crash_point("after-claim")
            report.add(self._send_claimed(rows, now))
            if report.backed_off:
                break
        return report

    def _version_of(self, campaign_id: str) -> str | None:
        campaign = self.catalog.get(campaign_id) if campaign_id != SYSTEM_CAMPAIGN else None
        return campaign.version_id if campaign is not None else None

    def _claim_limit(self) -> int:
        # A paced process claims at most a minute's worth, well inside the lease, so no claim
        # expires (and is taken by another process) while it waits its turn.
        if self.pacer is None:
            return CLAIM_BATCH
        return max(1, min(CLAIM_BATCH, int(self.pacer.rate * 60)))

    def _batch_size(self) -> int:
        if self.per_recipient:
            return 1
        size = max(self.transport.max_batch, 1)
        return min(size, self.pacer.max_batch) if self.pacer is not None else size

    def _send_claimed(self, rows: list[Claimed], now: datetime) -> DispatchReport:
        report = DispatchReport()
        rows = self._defer_closed(rows, now, report)
        groups: dict[tuple[str, str, str], list[Claimed]] = defaultdict(list)
        for row in rows:
            groups[(row.campaign_id, row.step_id, row.variant_id)].append(row)
        unsent: list[Claimed] = []
        for key, group in groups.items():
            if report.backed_off:
                unsent.extend(group)
                continue
            try:
                rendered = self._rendered(group[0])
            except Exception as exc:  # a template that cannot render fails its sends, not the tick
                log.error("cannot render %s/%s/%s: %s", *key, type(exc).__name__)
                self._record(
                    group,
                    [
                        Result(r.send_id, Outcome.FAILED, error=f"render failed: {exc}")
                        for r in group
                    ],
                    now,
                    report,
                )
                continue
            size = self._batch_size()
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                if report.backed_off:
                    unsent.extend(chunk)
                    continue
                if self.pacer is not None:
                    self.pacer.acquire(len(chunk))
                batch = self._batch(key, chunk, rendered)
                if self.per_recipient:
                    batch = _personal(batch)
                report.requests += 1
                results = self._deliver(chunk, batch, now, report)
                if self.health is not None and self.health.record(results, now):
                    report.backed_off = True
                    until = self.health.backed_off_until(now)
                    report.backoff_until = until.isoformat() if until else None
        if unsent:
            self._release(unsent)
        return report

    def _deliver(
        self, chunk: list[Claimed], batch: Batch, now: datetime, report: DispatchReport
    ) -> list[Result]:
        """Hand ``batch`` to the transport and settle its rows, each as early as the transport
        allows: the outbox in the transaction that stores the messages (exactly once), SMTP
        message by message as each reply arrives (at most the one in flight can repeat after a
        crash), a provider API per request."""
        ids = [r.id for r in chunk]
        self._later.clear()
        if self.transport.in_ledger:
            try:
                with self.db.begin() as conn:
                    ledger.start_sending(
                        conn, ids, lease_until=now + LEASE, transport=self.transport.name
                    )
                    results = self.transport.store(conn, batch)
                    crash_point("after-response")
                    self._record(chunk, results, now, report, conn=conn)
                for later in self._later:
                    self._after(*later)
                return results
            except Exception as exc:  # nothing was stored: the transaction rolled back
                self._later.clear()
                log.error("transport %s raised %s", self.transport.name, type(exc).__name__)
                results = [
                    Result(r.send_id, Outcome.RETRY, error=f"transport raised {type(exc).__name__}")
                    for r in chunk
                ]
                self._record(chunk, results, now, report)
                return results
        settler: _LedgerSettler | None = None
        if self.transport.settles_each:
            settler = _LedgerSettler(self, chunk, now, report)
        else:
            with self.db.begin() as conn:
                ledger.start_sending(
                    conn, ids, lease_until=now + LEASE, transport=self.transport.name
                )
        try:
            results = self.transport.send(batch, settler)
        except Exception as exc:  # an unexpected transport bug: the request may have left
            log.error("transport %s raised %s", self.transport.name, type(exc).__name__)
            results = [
                Result(r.send_id, Outcome.UNKNOWN, error=f"transport raised {type(exc).__name__}")
                for r in chunk
            ]
            if settler is not None:
                settler.rest(results)
                return results
        crash_point("after-response")
        if settler is not None:
            settler.rest(results)
        else:
            self._record(chunk, results, now, report)
        return results

    def _release(self, rows: list[Claimed]) -> None:
        """Hand back claimed rows that never reached the transport, as if never claimed."""
        with self.db.begin() as conn:
            ledger.unclaim(conn, [r.id for r in rows])

    def _defer_closed(
        self, rows: list[Claimed], now: datetime, report: DispatchReport
    ) -> list[Claimed]:
        """Campaign email whose local window closed between planning and sending (a retry, a
        backlog after downtime or a back-off) waits for the next open moment instead of going
        out at night or on a quiet day (:mod:`campaigns.cadence`). System email is exempt.

        The weekly cap is the planner's: it plans a campaign email only when the person's last
        one was accepted seven days before and none is in flight, so a row that goes later than
        planned only moves the next one. Rows of content held for a clinician's approval
        (:attr:`campaigns.definitions.Campaign.held`) wait too."""
        later: dict[datetime, list[int]] = defaultdict(list)
        deferred: set[int] = set()
        for row in rows:
            if row.kind != CAMPAIGN:
                continue
            campaign = self.catalog.get(row.campaign_id)
            if campaign is not None and campaign.held:
                # Planned before its content lost (or never had) a clinician's approval here:
                # it waits, and goes once the content is approved (campaigns.review).
                later[now + HELD_RECHECK].append(row.id)
                deferred.add(row.id)
                continue
            if self.times is None:
                continue
            override = campaign.meta.send_window if campaign is not None else None
            if not self.times.is_open(now, row.timezone, override):
                later[self.times.next_open(now, row.timezone, override)].append(row.id)
                deferred.add(row.id)
        if not deferred:
            return rows
        with self.db.begin() as conn:
            for when, ids in later.items():
                ledger.unclaim(conn, ids, due=when)
        report.deferred += len(deferred)
        return [r for r in rows if r.id not in deferred]

    def deliver_alerts(self, now: datetime, report: DispatchReport) -> None:
        """Hand pending ops alerts to staff through this dispatcher's transport and breaker."""
        sent = AlertDeliverer(
            self.db,
            self.transport,
            self.renderer,
            self.links.staff_email,
            self.from_email,
            self.from_name,
            self.health,
        ).deliver(now)
        report.requests += sent.requests
        if sent.paused:
            report.paused, report.backed_off = sent.paused, True

    def _record(
        self,
        rows: list[Claimed],
        results: list[Result],
        now: datetime,
        report: DispatchReport,
        *,
        conn: Connection | None = None,
    ) -> None:
        """Write outcomes with one statement per distinct outcome (a batch mostly shares one),
        in ``conn``'s transaction when given (the outbox's), else in a new one."""
        by_id = {r.send_id: r for r in results}
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        account: Result | None = None
        rejected: Result | None = None
        for row in rows:
            res = by_id.get(row.send_id) or Result(row.send_id, Outcome.UNKNOWN, error="no result")
            if res.outcome is Outcome.SENT:
                key: tuple[Any, ...] = (SENT, res.provider_id, None, None)
                report.sent += 1
            elif res.outcome is Outcome.ACCOUNT:
                key = (PENDING, None, res.error, None)
                account = account or res
                report.waiting += 1
            elif res.outcome is Outcome.REJECTED:
                key = (PENDING, None, res.error, None)
                rejected = rejected or res
                report.waiting += 1
            elif res.outcome is Outcome.RETRY and row.attempts + 1 < MAX_ATTEMPTS:
                delay = (
                    res.retry_after if res.retry_after is not None else _backoff(row.attempts + 1)
                )
                key = (RETRY, None, res.error, now + timedelta(seconds=delay))
                report.retried += 1
            elif res.outcome is Outcome.UNKNOWN:
                key = (UNKNOWN, None, res.error, None)
                report.unknown += 1
            else:
                key = (FAILED, None, res.error, None)
                report.failed += 1
            groups[key].append(row.id)
        if conn is None:
            with self.db.begin() as own:
                _write(own, groups, now)
            self._after(rows, account, rejected, now, report)
        else:
            _write(conn, groups, now)
            # The pause and the hold are written in their own transactions once the caller's
            # has committed (SQLite has one writer at a time).
            self._later.append((rows, account, rejected, now, report))

    def _after(
        self,
        rows: list[Claimed],
        account: Result | None,
        rejected: Result | None,
        now: datetime,
        report: DispatchReport,
    ) -> None:
        """What an account refusal or a refused message does beyond the ledger."""
        if account is not None:
            fix = account.fix or f"the {self.transport.name} transport refused the account"
            report.paused = fix
            report.backed_off = True
            if self.health is not None:
                self.health.pause(fix, account.error or "refused", now)
        if rejected is not None:
            first = rows[0]
            email = (first.campaign_id, first.step_id, first.variant_id)
            if email not in self._held:
                self._held.append(email)
                new = setaside.set_aside(
                    self.db,
                    email,
                    rejected.error or "refused",
                    self._version_of(first.campaign_id),
                    now,
                )
                report.set_aside += int(new)


class _LedgerSettler:
    """Settles each SMTP message as its reply arrives: ``claimed`` → ``sending`` just before the
    message is handed over, then its outcome at once. After a crash only the one message in
    flight is ``sending`` (it becomes ``unknown``); the rest of the batch is still ``claimed``
    and goes again when the lease runs out."""

    def __init__(
        self, dispatcher: Dispatcher, rows: list[Claimed], now: datetime, report: DispatchReport
    ) -> None:
        self.d = dispatcher
        self.rows = {r.send_id: r for r in rows}
        self.now = now
        self.report = report
        self.done: set[str] = set()

    def starting(self, send_id: str) -> None:
        row = self.rows[send_id]
        with self.d.db.begin() as conn:
            ledger.start_sending(
                conn, [row.id], lease_until=self.now + LEASE, transport=self.d.transport.name
            )

    def settled(self, result: Result) -> None:
        row = self.rows.get(result.send_id)
        if row is None or result.send_id in self.done:
            return
        self.done.add(result.send_id)
        self.d._record([row], [result], self.now, self.report)

    def rest(self, results: list[Result]) -> None:
        """Whatever the transport returned that it did not settle one by one."""
        by_id = {r.send_id: r for r in results}
        for send_id in list(self.rows):
            if send_id not in self.done:
                self.settled(
                    by_id.get(send_id) or Result(send_id, Outcome.UNKNOWN, error="no result")
                )


def _write(conn: Connection, groups: dict[tuple[Any, ...], list[int]], now: datetime) -> None:
    for (status, provider_id, error, retry_at), ids in groups.items():
        if status == SENT:
            ledger.mark_sent(conn, ids, at=now, provider_message_id=provider_id)
        elif status == PENDING:  # refused the account or the content: nothing left, it waits
            ledger.release(conn, ids, error=error)
        elif status == RETRY:
            ledger.mark_retry(conn, ids, due=retry_at, error=error)
        elif status == UNKNOWN:
            ledger.mark_unknown(conn, ids, now=now, error=error)
        else:
            ledger.mark_failed(conn, ids, error=error)


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: 1, 2, 4 … minutes, capped at an hour."""
    base: float = min(60.0 * 2 ** (attempt - 1), 3600.0)
    return base * (0.8 + 0.4 * random.random())


def _personal(batch: Batch) -> Batch:
    """The per-recipient render path: the one recipient's values written into the content."""
    (recipient,) = batch.recipients
    subject, html, text = fill(batch.rendered, recipient.values)
    return replace(batch, rendered=Rendered(subject=subject, html=html, text=text))
