"""The transport seam. Implementations must be safe to call from one thread at a time."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from core.errors import ConfigError, Unavailable
from templates import Rendered


class TransportError(Unavailable):
    """Root of transport exceptions."""


class TransportConfigError(TransportError, ConfigError, ValueError):
    """The transport cannot work with the configuration it was given."""


class Outcome(enum.Enum):
    SENT = "sent"  # the provider accepted it
    RETRY = "retry"  # it certainly did not leave (429, 5xx, refused): try again later
    FAILED = "failed"  # permanent: the provider refused this message
    UNKNOWN = "unknown"  # the request left but no answer came: never resend blindly


@dataclass(frozen=True)
class Envelope:
    """One recipient of a batch, with the values for the rendered tokens."""

    send_id: str
    to: str
    subscriber_id: int | None  # None for operational mail about no subscriber (a staff alert)
    values: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """Recipients who share one rendered email (one step and variant)."""

    rendered: Rendered
    from_email: str
    from_name: str
    category: str  # the campaign id: opaque, never personal
    custom_args: dict[str, str]  # shared opaque ids (campaign, step); the send_id is per recipient
    headers: dict[str, str]
    recipients: list[Envelope]


@dataclass(frozen=True)
class Result:
    send_id: str
    outcome: Outcome
    provider_id: str | None = None
    error: str | None = None
    retry_after: float | None = None


class Transport(ABC):
    name: str = "abstract"
    max_batch: int = 1

    @abstractmethod
    def send(self, batch: Batch) -> list[Result]:
        """Deliver every recipient of ``batch`` (at most ``max_batch``); one result each."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
