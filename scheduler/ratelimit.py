"""The send rate limit (``CLINICMAIL_SEND_RATE``, emails per second per sending process).

A token bucket paces transport calls by *recipients*: a SendGrid request with 500
personalizations costs 500 tokens. The bucket holds one second's worth, so a paced process never
bursts more than ``rate`` emails at once, and dispatch never hands the transport a batch larger than
that (:attr:`TokenBucket.max_batch`). The clock and the sleep are injectable so tests assert the
exact pauses asked for instead of measuring wall-clock time.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive (0 means unlimited: use no bucket)")
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.clock = clock
        self.sleep = sleep
        self.tokens = self.capacity
        self.last = clock()
        self.slept = 0.0  # total seconds asked of ``sleep`` (reported, and asserted in tests)

    @property
    def max_batch(self) -> int:
        """The largest batch one call may carry: one second's worth of email."""
        return max(1, int(self.capacity))

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def acquire(self, n: int) -> float:
        """Wait until ``n`` emails may go; returns the seconds slept for this call."""
        if n > self.max_batch:
            raise ValueError(f"a paced call carries at most {self.max_batch} recipients")
        self._refill()
        wait = 0.0
        if self.tokens < n:
            wait = (n - self.tokens) / self.rate
            self.sleep(wait)
            self.slept += wait
            self._refill()
        # If the sleep came back early the bucket goes into debt; the next call waits it off.
        self.tokens -= n
        return wait
