"""The one way a test waits: poll a condition until it holds or a deadline passes.

A test never sleeps for a fixed time hoping something has happened by then; it asks, again and
again, whether it has (a port answers, a row is stored, a page says "Done."), and fails with a
message naming what never happened. The sleep between two polls only spares the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str = "the condition never held",
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and
    return that; after ``timeout`` seconds raise AssertionError with ``message``.

    The condition is asked at least once, and once more at the deadline, so a slow machine that
    wakes late still sees a condition that has come true. An exception from the condition (an
    assertion about a page, a process that died) ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout:g} s)")
        time.sleep(interval)
