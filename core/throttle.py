"""A per-key sliding-window rate limit, kept in the process's memory: the one limiter every
HTTP entry point uses.

- The signup (form and API) limits each client address.
- The sign-in form uses two: one keyed by the client's address and one by the account's
  address, so neither one machine nor a crowd aimed at one account can make the server check
  passwords faster than a person types; a refused attempt is answered 429 before any password
  is hashed or the database is touched.
- ``/api/v1`` limits each API key.

The limit is per process (a client spread over several workers gets each worker's allowance);
where a bound must hold across processes it is kept in the database (the sign-in lockout in
:mod:`staff.accounts`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    """At most ``limit`` events per key within ``per`` seconds. Keys with no recent event are
    dropped, so memory is bounded by the keys seen in one window (and by ``max_keys``)."""

    def __init__(
        self,
        limit: int,
        per: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.per, self.max_keys, self._clock = limit, per, max_keys, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """Record an event for ``key``; return 0 when it is allowed, otherwise the seconds until
        the next one would be (the event is then not recorded)."""
        now = self._clock()
        with self._lock:
            if len(self._seen) >= self.max_keys:
                self._forget_idle(now)
            events = self._seen.setdefault(key, deque())
            while events and events[0] <= now - self.per:
                events.popleft()
            if len(events) >= self.limit:
                return max(events[0] + self.per - now, 0.001)
            events.append(now)
            return 0.0

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, ev in self._seen.items() if not ev or ev[-1] <= now - self.per]
        for k in idle:
            del self._seen[k]
        if len(self._seen) >= self.max_keys:  # all busy: start over rather than grow
            self._seen.clear()
