"""What the composition root hands the console: the database, the renderer, settings it needs,
and callables into packages the console may not import (the scheduler's ledger and transport)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from console.seams import ClinicSettingsPort, ImportRun
from console.services import Services
from storage import Database
from subscribers.privacy import Section
from templates import Rendered, Renderer


def _utc() -> ZoneInfo:
    return ZoneInfo("UTC")


def _nothing() -> None:
    return None


def _no_transport(to: str, rendered: Rendered, values: dict[str, str]) -> str:
    raise RuntimeError("no transport is configured for test sends")


@dataclass(frozen=True)
class ConsolePorts:
    db: Database
    # Cookies only over HTTPS when the service's public base URL is https.
    secure_cookies: bool
    # Extra sections of a person's record (name -> reader), e.g. enrollments and sends.
    record_sections: Mapping[str, Section] = field(default_factory=dict)
    renderer: Renderer | None = None
    base_url: str = "http://127.0.0.1:8000"
    review_interval: timedelta = timedelta(days=365)
    # The clinic's time zone (it follows the clinic's settings): a newsletter's delivery time
    # is checked in it, and times staff read in lists are shown in it.
    clinic_zone: Callable[[], ZoneInfo] = _utc
    # Called after content was activated or retired, so this process sends the new content.
    content_changed: Callable[[], object] = _nothing
    # Sends one rendered test email to a staff address through the configured transport,
    # outside the ledger; returns a short outcome for the page.
    send_test: Callable[[str, Rendered, dict[str, str]], str] = _no_transport
    # The sign-off pack of a campaign (its version awaiting review, else the live one) as PDF.
    signoff_pack: Callable[[str], bytes] | None = None
    # The operating pages' seams (people, dashboard, outbox, ops); None in a bare console.
    services: Services | None = None
    # The clinic's own settings (ops) and the CSV import; None where the root offers neither.
    clinic_settings: ClinicSettingsPort | None = None
    import_people: ImportRun | None = None

    def send_test_copy(self, to: str, rendered: Rendered, first_name: str) -> str:
        """Send ``rendered`` to staff address ``to`` as a test: "[Test] " before its subject
        and placeholder links (``…/TEST``) where a subscriber's own would go. Returns the
        transport's short outcome for the page."""
        values = {
            "first_name": first_name,
            "unsubscribe_url": f"{self.base_url}/unsubscribe/TEST",
            "preferences_url": f"{self.base_url}/preferences/TEST",
            "checkin_url": f"{self.base_url}/checkin/TEST",
        }
        marked = replace(rendered, subject="[Test] " + rendered.subject)
        return self.send_test(to, marked, values)
