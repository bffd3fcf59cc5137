"""The transport seam. Implementations must be safe to call from one thread at a time."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection

from core.errors import ConfigError, Unavailable
from templates import Rendered


class TransportError(Unavailable):
    """Root of transport exceptions."""


class TransportConfigError(TransportError, ConfigError, ValueError):
    """The transport cannot work with the configuration it was given."""


class Outcome(enum.Enum):
    SENT = "sent"  # the provider accepted it
    RETRY = "retry"  # it certainly did not leave (429, 5xx, refused): try again later
    FAILED = "failed"  # this recipient, for good: the provider refused the address
    UNKNOWN = "unknown"  # the request left but no answer came: never resend blindly
    REJECTED = "rejected"  # this message, for good: its content or headers are refused
    ACCOUNT = "account"  # the account or configuration is refused: nothing can go out


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

    @classmethod
    def staff_alert(
        cls,
        rendered: Rendered,
        *,
        alert: str,
        send_id: str,
        to: str,
        from_email: str,
        from_name: str,
    ) -> Batch:
        """An operational email to the clinic's staff contact: not a ledger row, category
        ``_system``, ``alert`` (e.g. ``transport-alert``) as the step id in the custom args."""
        return cls(
            rendered=rendered,
            from_email=from_email,
            from_name=from_name,
            category="_system",
            custom_args={"campaign_id": "_system", "step_id": alert},
            headers={},
            recipients=[
                Envelope(send_id=send_id, to=to, subscriber_id=None, values={"first_name": "team"})
            ],
        )


@dataclass(frozen=True)
class Result:
    send_id: str
    outcome: Outcome
    provider_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    fix: str | None = None  # ACCOUNT: what the operator must fix (transports.verdicts)


class Settler(Protocol):
    """The ledger's side of a transport that settles each message as its answer arrives."""

    def starting(self, send_id: str) -> None:
        """Called just before the message for ``send_id`` is handed over."""

    def settled(self, result: Result) -> None:
        """Called with each message's outcome as soon as it is known."""


class Transport(ABC):
    name: str = "abstract"
    max_batch: int = 1
    # True when :meth:`send` calls a :class:`Settler` per message (SMTP): dispatch then writes
    # each outcome as it arrives, so a crash can repeat at most the one message in flight.
    settles_each: bool = False
    # True when the transport keeps messages in the ledger's own database (outbox): dispatch
    # then calls :meth:`store` inside the transaction that settles the sends, so a message is
    # stored exactly when its send is ``sent``.
    in_ledger: bool = False

    @abstractmethod
    def send(self, batch: Batch, settler: Settler | None = None) -> list[Result]:
        """Deliver every recipient of ``batch`` (at most ``max_batch``); one result each. A
        transport with :attr:`settles_each` also tells ``settler`` about each message."""

    def store(self, conn: Connection, batch: Batch) -> list[Result]:
        """Deliver ``batch`` inside ``conn``'s transaction (only when :attr:`in_ledger`)."""
        raise NotImplementedError(f"the {self.name} transport does not store in the ledger")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
