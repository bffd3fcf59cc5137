"""The transport circuit breaker, shared by every sending process through the ``kv`` table.

A request whose every recipient came back ``RETRY`` (429, 5xx, connection refused) is a failure;
a request with any recipient accepted is a success; permanent refusals and unknown outcomes say
nothing about the transport. After :data:`THRESHOLD` consecutive failures:

- dispatch stops and every process skips dispatching until a stored back-off time (planning and
  webhook processing go on); the back-off starts at :data:`BACKOFF_BASE` and doubles, up to
  :data:`BACKOFF_CAP`, each time the first request after it fails again;
- one ERROR line is logged (transport name, count, status class: no address, name or body);
- one staff alert is raised for ``CLINICMAIL_STAFF_EMAIL`` in the ops-alert queue (:mod:`alerts`;
  it concerns no subscriber, so it is not in the send ledger). The deliverer
  (:mod:`scheduler.alerting`) sends it at the first tick that is not backed off, before any other
  email, until the provider accepts it. One incident (keyed by its first failure), one alert.

The first successful request clears the incident.

An answer that refuses the **account or configuration** (``Outcome.ACCOUNT``: a SendGrid 401 or
403, an unverified sender, SMTP authentication or TLS refused) pauses sending for everyone at
once, whatever the count: the state keeps the one line saying what to fix (``paused``), which
``clinicmail tick`` prints and exits non-zero on, ``/healthz`` reports as ``degraded``, the
``clinicmail_delivery_paused`` metric shows and every console page carries as a banner. No send
is marked failed for it: dispatch hands the rows back as if never claimed. While paused, each
tick tries one request (the most urgent email) to see whether the fix was made; the first
accepted request ends the pause and everything that waited goes out, system email first.

A back-off end further ahead than the back-off itself was written by a tick whose clock ran
ahead (``clinicmail tick --now`` in the future): it is ignored, so it never stalls real time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from alerts import raise_alert
from storage import Database, kvstate
from storage.kvstate import JsonState
from templates.system import TRANSPORT_ALERT
from transports import Outcome, Result

log = logging.getLogger("clinicmail.health")  # the name operators already filter on

KEY = "delivery.transport_health"
THRESHOLD = 3
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(minutes=30)


@dataclass
class BreakerState(JsonState):
    failures: int = 0  # consecutive requests whose recipients all came back RETRY
    backoff_seconds: float = 0.0  # 0 while healthy
    backoff_until: str | None = None  # ISO 8601 UTC
    since: str | None = None  # the first failure of this incident
    last_error: str | None = None  # a status class such as "HTTP 500": never a body
    paused: str | None = None  # the account/configuration refusal: what to fix (one line)
    paused_since: str | None = None

    @property
    def clean(self) -> bool:
        return self.failures == 0 and self.backoff_seconds == 0 and self.paused is None


def _error_class(results: list[Result]) -> str:
    """``"HTTP 500: <body>"`` → ``"HTTP 500"``: provider bodies can echo what we sent."""
    error = next((r.error for r in results if r.error), None) or "no answer"
    return error.split(":", 1)[0][:40]


class TransportBreaker:
    """Read and update the shared state. All writes are short transactions on one kv row."""

    def __init__(
        self,
        db: Database,
        transport_name: str,
        staff_email: str | None,
        *,
        threshold: int = THRESHOLD,
        base: timedelta = BACKOFF_BASE,
        cap: timedelta = BACKOFF_CAP,
    ) -> None:
        self.db = db
        self.transport_name = transport_name
        self.staff_email = staff_email
        self.threshold = threshold
        self.base = base
        self.cap = cap
        self._clean: bool | None = None  # what this process last saw; spares writes when healthy

    # -- reading ----------------------------------------------------------------------------
    def state(self) -> BreakerState:
        with self.db.begin() as conn:
            state = BreakerState.load(kvstate.read(conn, KEY))
        self._clean = state.clean
        return state

    def backed_off_until(self, now: datetime) -> datetime | None:
        """When dispatch may start again, if that is later than ``now``; else None."""
        state = self.state()
        if state.backoff_until is None:
            return None
        until = datetime.fromisoformat(state.backoff_until)
        if until - now > timedelta(seconds=state.backoff_seconds + 1):
            return None  # written by a tick whose clock ran ahead (tick --now in the future)
        return until if until > now else None

    def paused(self) -> str | None:
        """While the provider refuses the account or configuration: what to fix."""
        return self.state().paused

    def pause(self, fix: str, reason: str, now: datetime) -> None:
        """The provider refused the account or configuration: pause sending for everyone."""

        def change(conn: Connection, state: BreakerState) -> BreakerState:
            if state.paused != fix:
                log.error(
                    "sending is paused for everyone: %s (transport %s, %s); no email is marked "
                    "failed, everything waiting goes out once this is fixed",
                    fix,
                    self.transport_name,
                    reason,
                )
            new = state.paused is None
            if new:
                state.paused_since = now.isoformat()
                state.since = state.since or now.isoformat()
            state.paused = fix
            state.last_error = reason[:40]
            if new and self.staff_email:  # sent first once the transport works again
                self._raise(conn, state, now)
            return state

        self._update(change)

    def reset(self) -> BreakerState:
        """``clinicmail transport reset``: forget the back-off and the pause; the next tick
        sends at once (and pauses again if the provider still refuses)."""
        before = self.state()

        self._update(lambda _conn, _state: BreakerState())
        return before

    # -- writing ----------------------------------------------------------------------------
    def _update(self, change: Callable[[Connection, BreakerState], BreakerState]) -> BreakerState:
        """Apply ``change(conn, state) -> state`` under a row lock (SQLite: BEGIN IMMEDIATE);
        an alert it raises on ``conn`` is queued exactly when the change is stored."""
        with self.db.begin() as conn:
            raw = kvstate.read_locked(conn, KEY, BreakerState().dump())
            state = change(conn, BreakerState.load(raw))
            kvstate.write(conn, KEY, state.dump())
        self._clean = state.clean
        return state

    def record(self, results: list[Result], now: datetime) -> bool:
        """Record one request's outcome; True when dispatch must stop (the breaker is open)."""
        outcomes = {r.outcome for r in results}
        if Outcome.SENT in outcomes:
            if self._clean is not True:
                self._update(lambda _conn, s: self._recovered(s))
            return False
        if not outcomes or outcomes != {Outcome.RETRY}:
            return False
        state = self._update(lambda conn, s: self._failed(conn, s, results, now))
        return state.backoff_until is not None and datetime.fromisoformat(state.backoff_until) > now

    def _failed(
        self, conn: Connection, state: BreakerState, results: list[Result], now: datetime
    ) -> BreakerState:
        state.failures += 1
        state.since = state.since or now.isoformat()
        state.last_error = _error_class(results)
        if state.failures < self.threshold:
            return state
        opening = state.backoff_seconds == 0
        seconds = (
            self.base.total_seconds()
            if opening
            else min(state.backoff_seconds * 2, self.cap.total_seconds())
        )
        state.backoff_seconds = seconds
        state.backoff_until = (now + timedelta(seconds=seconds)).isoformat()
        if opening:
            queued = bool(self.staff_email) and self._raise(conn, state, now)
            # The one ERROR line of the incident. No addresses, names or provider bodies.
            log.error(
                "transport %s is failing: %d requests in a row were refused (%s); dispatch "
                "backs off for %ds%s",
                self.transport_name,
                state.failures,
                state.last_error,
                int(seconds),
                "; staff alert queued" if queued else "",
            )
        else:
            log.warning(
                "transport %s still failing (%s); dispatch backs off for %ds",
                self.transport_name,
                state.last_error,
                int(seconds),
            )
        return state

    def _recovered(self, state: BreakerState) -> BreakerState:
        if state.backoff_seconds or state.paused:
            log.info("transport %s works again; dispatch resumes", self.transport_name)
        # A raised alert outlives the incident: staff still need to hear it happened.
        return BreakerState()

    # -- the staff alert ----------------------------------------------------------------------
    def _raise(self, conn: Connection, state: BreakerState, now: datetime) -> bool:
        """Queue this incident's one alert (keyed by its first failure); True when new."""
        return raise_alert(
            conn,
            TRANSPORT_ALERT,
            state.since or now.isoformat(),
            {
                "transport": self.transport_name,
                "since": (state.since or "")[:19].replace("T", " "),
                "failures": max(state.failures, self.threshold),
                "error": state.last_error or "no answer",
            },
            now,
        )
