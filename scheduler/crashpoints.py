"""Test-only crash points for the crash-safety tests (``tests/test_delivery_crash.py``).

``CLINICMAIL_CRASH_AT=after-claim`` or ``after-response`` makes a sending process kill itself
with SIGKILL at that named point in :mod:`scheduler.dispatch`, where the timing cannot otherwise be
made deterministic from outside:

- ``after-claim``: rows are claimed (committed, leased) and no request has been made;
- ``after-response``: the provider answered, the outcome is not yet committed.

The variable is read once at import; when it is unset (always, outside those tests) a crash
point costs one string comparison. Never set it in production.
"""

from __future__ import annotations

import os
import signal

POINTS = frozenset({"after-claim", "after-response"})
_ARMED = os.environ.get("CLINICMAIL_CRASH_AT") or None


def crash_point(name: str) -> None:
    if name == _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
