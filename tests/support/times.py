"""Times as the CLI and the tests write them."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

with warnings.catch_warnings():
    # Starlette asks for its `httpx2` fork; the `httpx` we have works the same for tests.
    warnings.simplefilter("ignore")
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for its `httpx2` fork


def future_noon(days: int = 2) -> datetime:
    """A time inside the London send window, after anything the app did in real time."""
    day = datetime.now(UTC) + timedelta(days=days)
    return day.replace(hour=12, minute=0, second=0, microsecond=0)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")
