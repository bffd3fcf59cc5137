"""The composition root: builds the parts once from :class:`Settings` and hands them around."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from app import clinic_settings
from app.settings import Settings, secret_keys
from campaigns import BUNDLED_LIBRARY, content
from campaigns.broadcasts import BroadcastSource
from campaigns.loader import Catalog, Problem
from storage import Database
from subscribers.tokens import Tokens
from templates import ClinicInfo, Renderer
from transports import Transport

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from app.metrics import TickMetrics


@dataclass
class AppContext:
    settings: Settings
    db: Database
    _transport: Transport | None = field(default=None, repr=False)
    _content_generation: str = field(default="", repr=False)
    # Campaigns set aside because their files have problems (scheduler.library), by id.
    broken: dict[str, list[Problem]] = field(default_factory=dict)
    # The environment's settings, and the values staff saved in the console laid over them
    # (see refresh_settings); ``settings`` is always the effective result.
    _env_settings: Settings | None = field(default=None, repr=False)
    _stored_settings: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        return cls(
            settings=settings,
            db=Database(
                settings.database_url,
                key_file=settings.secret_key_file,
                data_dir=settings.data_dir,
            ),
        )

    @cached_property
    def clinic(self) -> ClinicInfo:
        s = self.settings
        return ClinicInfo(
            name=s.clinic_name,
            address=s.clinic_address,
            from_email=s.from_email,
            booking_url=s.booking_link,
            base_url=s.base_url,
            emergency_number=s.emergency_number,
            urgent_advice=s.urgent_advice,
            family_doctor=s.family_doctor,
            logo_url=s.logo_url,
            brand_colour=s.brand_colour,
            follow_up=s.followup.enabled,
        )

    def refresh_settings(self) -> bool:
        """Lay the settings staff saved in the console over the environment's
        (:mod:`app.clinic_settings`), in place, so everyone holding this context reads the
        one effective :attr:`settings`; True when they changed. Needs an open database: called
        when a command opens it, before each tick, and after a save in the console. A stored
        value that no longer validates raises :class:`SettingsError` naming it."""
        with self.db.begin() as conn:
            values = clinic_settings.stored(conn)
        if values == self._stored_settings:
            return False
        base = self._env_settings or self.settings
        with self.db.begin() as conn:
            self.settings = clinic_settings.effective(base, conn)
        self._env_settings, self._stored_settings = base, values
        self.__dict__.pop("clinic", None)
        if "renderer" in self.__dict__:  # the dispatcher and the console hold this one
            self.renderer.use_clinic(self.clinic)
        return True

    @property
    def env_settings(self) -> Settings:
        """The settings as the environment gives them, before any value saved in the console."""
        return self._env_settings or self.settings

    @cached_property
    def metrics(self) -> tuple[CollectorRegistry, TickMetrics]:
        """Prometheus registry for ``GET /metrics`` and the tick counters (one per context).
        Imported here: only ``serve`` has metrics, and the client library is a tenth of every
        other command's start-up."""
        from app.metrics import make_registry

        return make_registry(self.db)

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(self.clinic)

    @property
    def campaigns_dir(self) -> Path:
        return Path(self.settings.campaigns_dir) if self.settings.campaigns_dir else BUNDLED_LIBRARY

    @property
    def requires_approval(self) -> bool:
        """True when the transport reaches patients (sendgrid, smtp): campaign content and
        newsletters go out only once a clinician of this installation approved them."""
        return self.settings.transport != "outbox"

    @cached_property
    def catalog(self) -> Catalog:
        """The active content versions in the database (the library folder seeds campaigns the
        database has not seen; see campaigns.content). A campaign that cannot be built is set
        aside (paused) so every other one keeps sending; see scheduler.library."""
        catalog, self._content_generation, self.broken = content.load(
            self.db, self.campaigns_dir, self.renderer, require_approval=self.requires_approval
        )
        catalog.stored = BroadcastSource(self.db)  # one-off broadcasts live in the database
        return catalog

    def refresh_content(self) -> bool:
        """Reload the catalog in place when content was activated or retired since it was
        loaded (by the console or another process); True when it changed."""
        if "catalog" not in self.__dict__:
            return False
        if content.current_generation(self.db) == self._content_generation:
            return False
        fresh, self._content_generation, self.broken = content.load(
            self.db, self.campaigns_dir, self.renderer, require_approval=self.requires_approval
        )
        self.catalog.campaigns = fresh.campaigns  # everyone holding the catalog sees it
        return True

    @cached_property
    def signing_keys(self) -> list[str]:
        """Signing keys: CLINICMAIL_SECRET_KEY (comma-separated, newest last, for rotation),
        else the ones in the installation's key file (storage.keys; ``clinicmail keys rotate``)."""
        s = self.settings.secret_key
        if s is not None and s.get_secret_value().strip():
            return secret_keys(s)
        return self.db.keys().secrets

    @cached_property
    def tokens(self) -> Tokens:
        """Signs every link: unsubscribe, preferences, confirmation, tracked links, the open
        pixel and check-ins (a salt per purpose)."""
        return Tokens(self.signing_keys)

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = self.make_transport()
        return self._transport

    def make_transport(self) -> Transport:
        """A new transport of the configured kind (:attr:`transport` is the shared one)."""
        s = self.settings
        if s.transport == "sendgrid":
            from transports.sendgrid import SendGridTransport

            assert s.sendgrid_api_key is not None  # guaranteed by Settings
            return SendGridTransport(
                s.sendgrid_api_key.get_secret_value(),
                host=s.sendgrid_host,
                timeout=s.sendgrid_timeout,
            )
        if s.transport == "smtp":
            from transports.smtp import SMTPTransport

            assert s.smtp_url is not None
            return SMTPTransport(s.smtp_url.get_secret_value())
        from transports.outbox import OutboxTransport

        return OutboxTransport(self.db)

    def link(self, purpose: str, public_id: str, send_id: str | None = None) -> str:
        """``send_id``: the email the link is in, for unsubscribe and preference links."""
        token = self.tokens.make(purpose, public_id, send_id)  # type: ignore[arg-type]
        return f"{self.settings.base_url}/{purpose}/{token}"

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self.db.dispose()
