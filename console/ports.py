"""What the composition root hands the console: the database and readers from packages the
console may not import (the send ledger's history of a person lives with the scheduler)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from console.services import Services
from storage import Database
from subscribers.privacy import Section


@dataclass(frozen=True)
class ConsolePorts:
    db: Database
    # Cookies only over HTTPS when the service's public base URL is https.
    secure_cookies: bool
    # Extra sections of a person's record (name -> reader), e.g. enrollments and sends.
    record_sections: Mapping[str, Section] = field(default_factory=dict)
    # The operating pages' seams (people, dashboard, outbox, ops); None in a bare console.
    services: Services | None = None
