"""Configuration from the environment (and ``.env``): the variables in the README's table.

A bad or missing value raises :class:`SettingsError` whose message is one line naming the
variable; the CLI prints it and exits 1.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from functools import cached_property
from ipaddress import ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from campaigns.cadence import Cadence, Closures, parse_holidays, parse_quiet_days, parse_window
from core.errors import ConfigError
from engagement import followups

SECRET_FIELDS = frozenset(
    {
        "SENDGRID_API_KEY",
        "CLINICMAIL_SECRET_KEY",
        "CLINICMAIL_SMTP_URL",
        "CLINICMAIL_BOUNCE_MAILBOX",
        "CLINICMAIL_METRICS_TOKEN",
    }
)
# A link-signing key shorter than this can be guessed offline from one signed link.
MIN_SECRET_KEY_LENGTH = 32


def secret_keys(value: SecretStr | None) -> list[str]:
    """The keys in CLINICMAIL_SECRET_KEY: comma-separated, newest last (rotation); none when
    unset or blank."""
    if value is None:
        return []
    return [k.strip() for k in value.get_secret_value().split(",") if k.strip()]


class SettingsError(ConfigError, ValueError):
    """One line naming the bad variable."""


def parse_networks(value: str) -> list[str]:
    """``"10.0.0.1, 10.1.0.0/16"`` → each entry normalized; a bad entry raises ValueError."""
    out = []
    for part in value.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            out.append(str(ip_network(entry, strict=False)))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (e.g. 10.0.0.1 or 10.0.0.0/8)"
            ) from None
    return out


_UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}


def parse_interval(value: str) -> timedelta:
    """``12 months``, ``26 weeks``, ``90 days``, ``1 year`` → a timedelta (1 day to 5 years)."""
    parts = value.strip().lower().split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1].rstrip("s") not in _UNIT_DAYS:
        raise ValueError("must look like '12 months', '26 weeks' or '90 days'")
    days = int(parts[0]) * _UNIT_DAYS[parts[1].rstrip("s")]
    if not 1 <= days <= 5 * 365.25:
        raise ValueError("must be between 1 day and 5 years")
    return timedelta(days=round(days))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    database_url: str = Field("sqlite:///clinicmail.db", validation_alias="CLINICMAIL_DATABASE_URL")
    transport: Literal["outbox", "sendgrid", "smtp"] = Field(
        "outbox", validation_alias="CLINICMAIL_TRANSPORT"
    )
    sendgrid_api_key: SecretStr | None = Field(None, validation_alias="SENDGRID_API_KEY")
    sendgrid_host: str = Field(
        "https://api.sendgrid.com", validation_alias="CLINICMAIL_SENDGRID_HOST"
    )
    sendgrid_timeout: float = Field(
        30.0, gt=0, le=300, validation_alias="CLINICMAIL_SENDGRID_TIMEOUT"
    )
    sendgrid_webhook_public_key: str | None = Field(
        None, validation_alias="CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY"
    )
    smtp_url: SecretStr | None = Field(None, validation_alias="CLINICMAIL_SMTP_URL")
    # imaps://user:pass@host[:993]/FOLDER: where SMTP bounces arrive (engagement.bounce_mailbox).
    bounce_mailbox: SecretStr | None = Field(None, validation_alias="CLINICMAIL_BOUNCE_MAILBOX")
    secret_key: SecretStr | None = Field(None, validation_alias="CLINICMAIL_SECRET_KEY")
    # Where the generated keys live (the link-signing keys when CLINICMAIL_SECRET_KEY is unset,
    # and the suppression-list hash key): CLINICMAIL_DATA_DIR/clinicmail.keys; default beside
    # the SQLite database file, for any other database the per-user state directory
    # ($XDG_STATE_HOME/clinicmail or ~/.local/state/clinicmail); see storage.keys.
    # CLINICMAIL_SECRET_KEY_FILE (older) names the file itself and wins.
    data_dir: str | None = Field(None, validation_alias="CLINICMAIL_DATA_DIR")
    secret_key_file: str | None = Field(None, validation_alias="CLINICMAIL_SECRET_KEY_FILE")
    base_url: str = Field("http://127.0.0.1:8000", validation_alias="CLINICMAIL_BASE_URL")
    from_email: str = Field("hello@clinic.example", validation_alias="CLINICMAIL_FROM_EMAIL")
    clinic_name: str = Field("Demo Back & Neck Clinic", validation_alias="CLINICMAIL_CLINIC_NAME")
    clinic_address: str = Field(
        "1 Example Street, London W1A 1AA, United Kingdom",
        validation_alias="CLINICMAIL_CLINIC_ADDRESS",
    )
    campaigns_dir: str | None = Field(None, validation_alias="CLINICMAIL_CAMPAIGNS_DIR")
    timezone: str = Field("Europe/London", validation_alias="CLINICMAIL_TIMEZONE")
    staff_email: str | None = Field(None, validation_alias="CLINICMAIL_STAFF_EMAIL")
    send_window: str = Field("08:00-20:00", validation_alias="CLINICMAIL_SEND_WINDOW")
    # Delivery (not in the original table): campaign email is held on quiet weekdays and clinic
    # holidays in the subscriber's local time; SEND_RATE caps emails per second per sending
    # process (0 = unlimited).
    quiet_days: str = Field("", validation_alias="CLINICMAIL_QUIET_DAYS")
    holidays: str = Field("", validation_alias="CLINICMAIL_HOLIDAYS")
    send_rate: float = Field(0.0, ge=0, le=100_000, validation_alias="CLINICMAIL_SEND_RATE")
    # Seconds between the scheduler's planning-and-sending passes (``serve``'s job
    # ``plan-and-dispatch``). A pass sends everything due before it ends, so this is the longest
    # an email due between passes waits (a confirmation email, a retry); shorter costs one cheap
    # query per pass and process.
    tick_seconds: int = Field(60, ge=1, le=3600, validation_alias="CLINICMAIL_TICK_SECONDS")
    # Not in the original table: where "Book an assessment" links go (default: a reply email).
    booking_url: str | None = Field(None, validation_alias="CLINICMAIL_BOOKING_URL")
    # List health (not in the original table): weeks without human engagement before the sunset
    # policy asks once and then pauses campaign email (engagement.sunset); 0 turns it off.
    sunset_weeks: int = Field(26, validation_alias="CLINICMAIL_SUNSET_WEEKS")
    # Not in the original table: requests per minute each API key may make to /api/v1.
    api_rate_limit: int = Field(600, validation_alias="CLINICMAIL_API_RATE_LIMIT")
    # Not in the original table: own open/click tracking for the smtp and outbox transports
    # (SendGrid reports opens through its webhook and its click tracking stays off).
    tracking: str = Field("on", validation_alias="CLINICMAIL_TRACKING")
    # Not in the original table: log lines as readable text (default) or one JSON object each.
    log_format: Literal["text", "json"] = Field("text", validation_alias="CLINICMAIL_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="CLINICMAIL_LOG_LEVEL"
    )
    # Clinical content: where the library's urgent-care sections send people (a clinic in the US
    # or the EU says 911 or 112), and the clinic's look in every email.
    emergency_number: str = Field("999", validation_alias="CLINICMAIL_EMERGENCY_NUMBER")
    urgent_advice: str = Field("NHS 111", validation_alias="CLINICMAIL_URGENT_ADVICE")
    family_doctor: str = Field("GP", validation_alias="CLINICMAIL_FAMILY_DOCTOR")
    logo_url: str | None = Field(None, validation_alias="CLINICMAIL_LOGO_URL")
    brand_colour: str = Field("#17453b", validation_alias="CLINICMAIL_BRAND_COLOUR")
    # Retention (docs/privacy.md), in days, enforced by the hourly housekeeping: raw webhook
    # event payloads (the structured facts stay for stats and deduplication), outbox messages,
    # signups never confirmed, and staff sign-in attempts.
    retain_event_payloads_days: int = Field(
        30, ge=1, le=3650, validation_alias="CLINICMAIL_RETAIN_EVENT_PAYLOADS_DAYS"
    )
    retain_outbox_days: int = Field(
        30, ge=1, le=3650, validation_alias="CLINICMAIL_RETAIN_OUTBOX_DAYS"
    )
    retain_unconfirmed_days: int = Field(
        7, ge=1, le=365, validation_alias="CLINICMAIL_RETAIN_UNCONFIRMED_DAYS"
    )
    retain_login_attempts_days: int = Field(
        90, ge=1, le=3650, validation_alias="CLINICMAIL_RETAIN_LOGIN_ATTEMPTS_DAYS"
    )
    # Deliverability (not in the original table): the DNS server `clinicmail doctor` asks, as
    # host:port; unset means the machine's resolver.
    dns_resolver: str | None = Field(None, validation_alias="CLINICMAIL_DNS_RESOLVER")

    # HTTP edge (docs/security.md): the bearer token Prometheus sends to GET /metrics (without
    # one, /metrics answers loopback clients only), and the reverse proxies whose
    # X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDRs, comma-separated; none by
    # default, so a client cannot forge its address for the rate limit or the consent record).
    metrics_token: SecretStr | None = Field(None, validation_alias="CLINICMAIL_METRICS_TOKEN")
    trusted_proxies: str = Field("", validation_alias="CLINICMAIL_TRUSTED_PROXIES")
    # A signup is answered at a multiple of this many seconds after it arrived, so its timing
    # never tells a new address from one already held (subscribers.web).
    signup_answer_seconds: float = Field(
        0.1, ge=0, le=5, validation_alias="CLINICMAIL_SIGNUP_ANSWER_SECONDS"
    )

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        if len(v.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters (use a long random string)")
        return SecretStr(v.get_secret_value().strip())

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: str) -> str:
        parse_networks(v)
        return v

    # Staff console: a clinician's review of campaign content falls due again after this long
    # ("12 months", "26 weeks", "90 days").
    review_interval: str = Field("12 months", validation_alias="CLINICMAIL_REVIEW_INTERVAL")

    @field_validator("review_interval")
    @classmethod
    def _review_interval(cls, v: str) -> str:
        parse_interval(v)
        return v

    # Personal follow-up of red-flag signups and "worse" check-ins (engagement.followups): an
    # open one falls due this long after it opened and staff are reminded; "off": the clinic
    # does not follow people up personally (nothing opens, the safety email promises no contact).
    followup_within: str = Field(
        followups.DEFAULT_WITHIN, validation_alias="CLINICMAIL_FOLLOWUP_WITHIN"
    )

    @field_validator("followup_within")
    @classmethod
    def _followup_within(cls, v: str) -> str:
        followups.Policy.parse(v)
        return v

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _public_key(cls, v: str | None) -> str | None:
        if not v or not v.strip():
            return None
        from engagement.signature import usable_public_key

        if not usable_public_key(v):
            raise ValueError(
                "is not a usable public key (paste the base64 key from SendGrid's Event Webhook settings)"
            )
        return v.strip()

    @field_validator("secret_key")
    @classmethod
    def _secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        if any(len(k) < MIN_SECRET_KEY_LENGTH for k in secret_keys(v)):
            raise ValueError(
                f"is too short: each key needs at least {MIN_SECRET_KEY_LENGTH} characters "
                "(unset it to use a generated key)"
            )
        return v

    @field_validator("secret_key_file")
    @classmethod
    def _key_file(cls, v: str | None) -> str | None:
        return v.strip() if v and v.strip() else None

    @field_validator("campaigns_dir")
    @classmethod
    def _campaigns_dir(cls, v: str | None) -> str | None:
        if not v or not v.strip():
            return None
        path = Path(v.strip()).expanduser()
        if not path.is_dir():
            raise ValueError("is not a folder (no campaigns can be loaded from it)")
        return str(path)

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: str | None) -> str | None:
        if not v or not v.strip():
            return None
        path = Path(v.strip()).expanduser()
        if path.exists() and not path.is_dir():
            raise ValueError("must name a directory (it is a file)")
        return str(path)

    @field_validator("dns_resolver")
    @classmethod
    def _dns_resolver(cls, v: str | None) -> str | None:
        if not v or not v.strip():
            return None
        from deliverability.lookup import parse_server

        parse_server(v)
        return v.strip()

    @field_validator("database_url")
    @classmethod
    def _db(cls, v: str) -> str:
        if "://" not in v:
            raise ValueError("must be an SQLAlchemy URL such as sqlite:///clinicmail.db")
        return v

    @field_validator("sendgrid_host", "base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

    @field_validator("tracking")
    @classmethod
    def _tracking(cls, v: str) -> str:
        value = v.strip().lower()
        if value not in ("on", "off"):
            raise ValueError("must be on or off")
        return value

    @field_validator("sunset_weeks", mode="before")
    @classmethod
    def _sunset_weeks(cls, v: object) -> int:
        text = str(v).strip()
        if not text.isdigit() or int(text) > 520:
            raise ValueError("must be a whole number of weeks from 0 (off) to 520")
        return int(text)

    @field_validator("api_rate_limit", mode="before")
    @classmethod
    def _api_rate(cls, v: object) -> int:
        text = str(v).strip()
        if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
            raise ValueError("must be a whole number of requests per minute from 1 to 1000000")
        return int(text)

    @field_validator("emergency_number", "urgent_advice", "family_doctor")
    @classmethod
    def _care_line(cls, v: str) -> str:
        value = " ".join(v.split())
        if not value or len(value) > 60 or any(c in value for c in "{}<>"):
            raise ValueError(
                "must be a short phone number or name, e.g. 999, NHS 111 or GP "
                "(at most 60 characters, no braces or angle brackets)"
            )
        return value

    @field_validator("logo_url")
    @classmethod
    def _logo(cls, v: str | None) -> str | None:
        if v and urlsplit(v).scheme != "https":
            raise ValueError("must be an https:// image URL (email clients block other images)")
        return v or None

    @field_validator("brand_colour")
    @classmethod
    def _colour(cls, v: str) -> str:
        value = v.strip().lower()
        if not re.fullmatch(r"#[0-9a-f]{6}", value):
            raise ValueError("must be a hex colour like #17453b")
        if contrast_with_white(value) < 4.5:
            # The call-to-action button carries white text on this colour.
            raise ValueError("is too light: white button text on it would be hard to read")
        return value

    @field_validator("booking_url")
    @classmethod
    def _booking(cls, v: str | None) -> str | None:
        if v and urlsplit(v).scheme not in ("http", "https", "mailto", "tel"):
            raise ValueError("must be an http(s), mailto: or tel: URL")
        return v or None

    @field_validator("from_email", "staff_email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        try:
            return validate_email(v, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"not a valid email address ({exc})") from None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone name such as Europe/London") from None
        return v

    @field_validator("send_window", "quiet_days", "holidays")
    @classmethod
    def _calendar(cls, v: str, info: ValidationInfo) -> str:
        """Parsed here only to refuse a bad value at start-up; the cadence parses it again."""
        parse = {
            "send_window": parse_window,
            "quiet_days": parse_quiet_days,
            "holidays": parse_holidays,
        }[str(info.field_name)]
        parse(v)
        return v

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        parts = urlsplit(v.get_secret_value())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                "must look like smtp://user:pass@host:587 or smtps://user:pass@host:465"
            )
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("has an invalid port") from None
        tls = parse_qs(parts.query, keep_blank_values=True).get("tls", [])
        if tls and (
            tls not in (["required"], ["off"]) or (parts.scheme, tls) == ("smtps", ["off"])
        ):
            raise ValueError("the tls option is ?tls=required or ?tls=off (smtp:// only)")
        return v

    @field_validator("bounce_mailbox")
    @classmethod
    def _bounce_mailbox(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        from engagement.mailbox import MailboxURL

        MailboxURL.parse(v.get_secret_value())  # a ValueError names what is wrong
        return v

    @model_validator(mode="after")
    def _needs(self) -> Settings:
        if self.transport == "sendgrid" and not (
            self.sendgrid_api_key and self.sendgrid_api_key.get_secret_value()
        ):
            raise _Missing("SENDGRID_API_KEY", "is required when CLINICMAIL_TRANSPORT=sendgrid")
        if self.transport == "smtp" and self.smtp_url is None:
            raise _Missing("CLINICMAIL_SMTP_URL", "is required when CLINICMAIL_TRANSPORT=smtp")
        if self.staff_email is None:
            # An alert always has somewhere to go: the clinic's own sending address.
            self.staff_email = self.from_email
        return self

    @cached_property
    def proxies(self) -> list[str]:
        return parse_networks(self.trusted_proxies)

    @cached_property
    def review_every(self) -> timedelta:
        return parse_interval(self.review_interval)

    @cached_property
    def followup(self) -> followups.Policy:
        """When follow-ups fall due: working days in the clinic's zone, its holidays skipped."""
        return followups.Policy.parse(
            self.followup_within, self.zone, parse_holidays(self.holidays)
        )

    @cached_property
    def window(self) -> tuple[time, time]:
        return parse_window(self.send_window)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def closures(self) -> Closures:
        return Closures(parse_quiet_days(self.quiet_days), parse_holidays(self.holidays))

    @cached_property
    def cadence(self) -> Cadence:
        """When email may go (zone, send window, quiet days, holidays): the one place a
        :class:`~campaigns.cadence.Cadence` is built from settings."""
        return Cadence(self.zone, self.send_window, self.closures)

    @property
    def booking_link(self) -> str:
        return self.booking_url or f"mailto:{self.from_email}?subject=Appointment%20request"

    @property
    def own_tracking(self) -> bool:
        """Our own open pixel and tracked links: on for the smtp and outbox transports unless
        CLINICMAIL_TRACKING=off; never for SendGrid (its webhook reports opens)."""
        return self.tracking == "on" and self.transport in ("smtp", "outbox")


def contrast_with_white(hex_colour: str) -> float:
    """WCAG 2 contrast ratio of white text on ``#rrggbb`` (4.5 or more reads well)."""

    def channel(c: int) -> float:
        x = c / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    lum = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (lum + 0.05)


class _Missing(ConfigError, ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name} {message}")
        self.name = name


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise :class:`SettingsError` with one line naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _Missing):
            raise SettingsError(str(ctx_error)) from None
        name = str(err["loc"][0]) if err["loc"] else "configuration"
        name = name.upper()
        message = err["msg"].removeprefix("Value error, ")
        shown = "" if name in SECRET_FIELDS else f" (got {err.get('input')!r})"
        raise SettingsError(f"{name}: {message}{shown}") from None
