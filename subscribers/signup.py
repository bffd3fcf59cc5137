"""Signup: the request model shared by the JSON API and the hosted form, and what a signup stores.

A signup stores an *unconfirmed* subscriber with the consent events (wording version, hash of
the words, IP, user agent); nothing is mailed to them but the confirmation email until they click
its link (double opt-in). A signup for an address we already hold, or one on the suppression
list, is answered exactly like a new one and changes nothing anyone could observe: the endpoint
must not tell strangers who is subscribed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy import Connection, insert, select, update

from subscribers import consent, store
from subscribers.addresses import InvalidAddress, normalize
from subscribers.importer import known_zones
from subscribers.symptoms import BY_CODE, has_red_flag
from subscribers.tables import subscribers

SOURCE = "signup"


class SignupRequest(BaseModel):
    """``POST /api/subscribers``. ``consent`` must be ``true``: it covers weekly email and, when
    symptoms are given, keeping them. The hosted form asks the two separately (``health_consent``)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    email: str = Field(max_length=320, description="The address to subscribe.")
    first_name: str | None = Field(default=None, max_length=100)
    symptoms: list[str] = Field(
        default_factory=list, max_length=len(BY_CODE), description="Symptom codes."
    )
    timezone: str | None = Field(default=None, max_length=64, description="IANA zone name.")
    consent: bool = Field(strict=True, description="Must be true.")
    health_consent: bool | None = Field(
        default=None,
        validate_default=True,
        description="Separate consent to store symptoms; when omitted, `consent` covers it.",
    )

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        try:
            email, _ = normalize(v)
        except InvalidAddress as exc:
            raise ValueError(str(exc)) from None
        return email

    @field_validator("first_name")
    @classmethod
    def _first_name(cls, v: str | None) -> str | None:
        text = " ".join((v or "").split())
        return text or None

    @field_validator("symptoms")
    @classmethod
    def _symptoms(cls, v: list[str]) -> list[str]:
        codes = sorted({c.strip() for c in v if c.strip()})
        unknown = [c for c in codes if c not in BY_CODE]
        if unknown:
            raise ValueError(f"unknown symptom code: {', '.join(unknown)}")
        return codes

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        if not v:
            return None
        if v not in known_zones():
            raise ValueError(f"unknown time zone: {v} (use an IANA name such as Europe/London)")
        return v

    @field_validator("consent")
    @classmethod
    def _consent(cls, v: bool) -> bool:
        if v is not True:
            raise ValueError("consent must be true: we only email people who ask us to")
        return v

    @field_validator("health_consent")
    @classmethod
    def _health(cls, v: bool | None, info: ValidationInfo) -> bool | None:
        if v is False and info.data.get("symptoms"):
            raise ValueError("to keep the symptoms you ticked we need your consent to store them")
        return v


def field_errors(exc: ValidationError) -> dict[str, str]:
    """``{field: message}`` for each bad field (the first problem of each)."""
    out: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else "body"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "this field is required"
        out.setdefault(name, msg)
    return out


def register(
    conn: Connection,
    req: SignupRequest,
    *,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
) -> int | None:
    """Store a signup; returns the subscriber's id when a confirmation email should go out.

    That is a new address, or one that unsubscribed earlier and asks again: it becomes
    unconfirmed (its history kept) and gets nothing but a new confirmation email until that is
    clicked. None means nothing new to confirm: a suppressed address (bounced, complained,
    erased: never re-added), one already confirmed, or an unconfirmed signup that was updated
    and already has its confirmation email queued.
    """
    key = req.email.lower()
    if store.is_suppressed(conn, key):
        return None
    row = conn.execute(
        select(subscribers.c.id, subscribers.c.status).where(subscribers.c.email_key == key)
    ).first()
    if row is not None and row.status == store.CONFIRMED:
        return None
    returning = row is not None and row.status == store.UNSUBSCRIBED
    if row is None:
        sid = int(
            conn.execute(
                insert(subscribers)
                .values(
                    public_id=store.new_public_id(),
                    email=req.email,
                    email_key=key,
                    first_name=req.first_name,
                    timezone=req.timezone,
                    status=store.UNCONFIRMED,
                    source=SOURCE,
                    red_flag=has_red_flag(req.symptoms),
                    created_at=now,
                    updated_at=now,
                )
                .returning(subscribers.c.id)
            ).scalar_one()
        )
    else:
        sid = row.id
        values: dict[str, Any] = {
            "first_name": req.first_name,
            "timezone": req.timezone,
            "updated_at": now,
        }
        if returning:
            values["status"] = store.UNCONFIRMED
        conn.execute(update(subscribers).where(subscribers.c.id == sid).values(**values))
    store.set_symptoms(conn, sid, req.symptoms)
    _consent_events(conn, sid, req, now, ip, user_agent)
    return sid if row is None or returning else None


def _consent_events(
    conn: Connection,
    sid: int,
    req: SignupRequest,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
) -> None:
    purposes = [store.EMAIL_PURPOSE]
    if req.symptoms:
        purposes.append(store.HEALTH_PURPOSE)
    for purpose in purposes:
        store.record_consent(
            conn,
            sid,
            purpose=purpose,
            action="given",
            at=now,
            source=SOURCE,
            wording_version=consent.VERSION,
            wording_hash=consent.wording_hash(purpose),
            ip=(ip or None) and ip[:64],
            user_agent=(user_agent or None) and user_agent[:500],
        )


class RateLimiter:
    """A sliding window per key (the client's IP), in memory: enough to blunt a script that
    floods one process; a deployment behind a proxy should limit there too."""

    def __init__(self, limit: int, per_seconds: float = 60.0) -> None:
        self.limit = limit
        self.per = per_seconds
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, *, at: float | None = None) -> bool:
        now = time.monotonic() if at is None else at
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.per:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle keys so memory stays bounded
                for k in [k for k, v in self._hits.items() if not v]:
                    del self._hits[k]
            return True


def form_to_data(form: Any) -> dict[str, Any]:
    """The hosted form's fields as the API's JSON shape (checkboxes send nothing when unticked)."""
    return {
        "email": form.get("email") or "",
        "first_name": form.get("first_name") or None,
        "symptoms": list(form.getlist("symptoms")),
        "timezone": form.get("timezone") or None,
        "consent": form.get("consent") == "yes",
        "health_consent": form.get("health_consent") == "yes",
    }
