"""How mail leaves the machine. One interface (:class:`Transport`), one module per provider.

Exceptions (part of the tree in :mod:`core.errors`)::

    TransportError(Unavailable)       any transport problem an operator must see
    └── TransportConfigError(ConfigError, ValueError)   bad credentials or settings; fix and restart

Per-recipient outcomes are values (:class:`Result`), not exceptions: a batch can partly succeed.
"""

from transports.base import (
    Batch,
    Envelope,
    Outcome,
    Result,
    Transport,
    TransportConfigError,
    TransportError,
)

__all__ = [
    "Batch",
    "Envelope",
    "Outcome",
    "Result",
    "Transport",
    "TransportConfigError",
    "TransportError",
]
