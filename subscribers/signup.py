"""Signup: the request model shared by the JSON API and the hosted form, and what a signup stores.

A signup for a new address stores an *unconfirmed* subscriber with the consent events (wording
version, hash of the words, IP, user agent); nothing is mailed to them but the confirmation email
until its link is used (double opt-in: ``GET`` shows a button, ``POST`` confirms). A signup for an
address we already hold is held apart (:mod:`subscribers.held`) and changes nothing about that
person until the owner confirms it. Every signup is answered alike whatever the address's state:
the endpoint must not tell strangers who is subscribed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy import Connection, select, update

from core.headers import NAME_MAX, header_problem
from storage.sql import dialect_insert
from subscribers import consent, held, store
from subscribers.addresses import InvalidAddress, normalize
from subscribers.importer import known_zones
from subscribers.symptoms import BY_CODE, RED_FLAGS, has_red_flag
from subscribers.tables import subscribers

SOURCE = "signup"


# A first name is greeted in emails ("Hi Ann"), so it must stay a name: letters (any script),
# marks, spaces, apostrophes, hyphens and full stops. A stranger must not be able to put a link
# ("Click evil.example") or markup into an email we send to someone else's address.
FIRST_NAME_MAX = NAME_MAX
_NAME_CHARS = re.compile(r"^[^\W\d_]([^\W\d_]|[\s'\u2019.\-])*$")
_DOMAIN_LIKE = re.compile(r"[^\W\d_]{2,}\.[^\W\d_]{2,}")
# A web address spelled out ("evil dot com", "www evil", "http colon"): "dot" followed by a
# common top-level domain, or a scheme or www as a word. No first name contains these.
_SPELLED_ADDRESS = re.compile(
    r"(?i)(?:\bdot\s+(?:com|net|org|co|uk|io|info|biz|me|app|xyz|online|site|shop|ru|de)\b)"
    r"|(?:\b(?:www|https?)\b)"
)
_INVISIBLE = frozenset({"Cf", "Co", "Cs"})  # invisible formatting: dropped


class SignupRequest(BaseModel):
    """``POST /api/subscribers``. ``consent`` must be ``true``: it covers weekly email and, when
    symptoms are given, keeping them. The hosted form asks the two separately (``health_consent``)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    email: str = Field(max_length=320, description="The address to subscribe.")
    first_name: str | None = Field(
        default=None,
        max_length=200,
        description=f"Optional; letters only, at most {FIRST_NAME_MAX} characters.",
    )
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

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        # No database text column can hold a NUL (PostgreSQL refuses it outright).
        values = v if isinstance(v, list) else [v]
        if any(isinstance(x, str) and "\x00" in x for x in values):
            raise ValueError(NUL_MESSAGE)
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        if not v:
            raise ValueError("Please enter your email address.")
        try:
            email, _ = normalize(v)
        except InvalidAddress:
            raise ValueError(
                "Please check your email address: it should look like name@example.com."
            ) from None
        return email

    @field_validator("first_name")
    @classmethod
    def _first_name(cls, v: str | None) -> str | None:
        visible = "".join(c for c in (v or "") if unicodedata.category(c) not in _INVISIBLE)
        if header_problem(visible, max_length=len(visible)):  # a line break or a control
            raise ValueError(
                "Please enter your first name on one line, without special characters."
            )
        text = " ".join(visible.split())
        if not text:
            return None
        if len(text) > FIRST_NAME_MAX:
            raise ValueError(f"Please keep your first name to {FIRST_NAME_MAX} characters.")
        if (
            not _NAME_CHARS.match(text)
            or _DOMAIN_LIKE.search(text)
            or _SPELLED_ADDRESS.search(text)
        ):
            raise ValueError(
                "Please enter just your first name, using letters only (no web addresses, "
                "numbers or symbols such as < > / @)."
            )
        return text

    @field_validator("symptoms")
    @classmethod
    def _symptoms(cls, v: list[str]) -> list[str]:
        codes = sorted({c.strip() for c in v if c.strip()})
        unknown = [c for c in codes if c not in BY_CODE]
        if unknown:
            raise ValueError(
                f"We don't recognise this symptom: {', '.join(unknown)[:200]}. Please choose "
                "from the list."
            )
        return codes

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        if not v:
            return None
        if v not in known_zones():
            raise ValueError(
                f"We don't recognise the time zone {v!r}. Please use a name such as Europe/London."
            )
        return v

    @field_validator("consent")
    @classmethod
    def _consent(cls, v: bool) -> bool:
        if v is not True:
            raise ValueError(CONSENT_MESSAGE)
        return v

    @field_validator("health_consent")
    @classmethod
    def _health(cls, v: bool | None, info: ValidationInfo) -> bool | None:
        if v is False and info.data.get("symptoms"):
            raise ValueError(
                "To keep the symptoms you ticked, we need your consent to store them. Please "
                "tick that box, or untick the symptoms."
            )
        return v


NUL_MESSAGE = "This contains a character we can't accept (a NUL). Please retype it."
CONSENT_MESSAGE = "Please tick the box to give your consent to our weekly emails."
# Pydantic's own error types, in words a patient reads (our validators word their own).
_PLAIN = {
    "missing": "This is required.",
    "string_type": "Please enter this as text.",
    "string_too_long": "This is too long.",
    "list_type": "Please give a list of symptoms.",
    "too_long": "Too many symptoms were given.",
    "bool_type": "Please answer yes or no.",
    "bool_parsing": "Please answer yes or no.",
}
_PLAIN_BY_FIELD = {
    ("email", "missing"): "Please enter your email address.",
    ("consent", "missing"): CONSENT_MESSAGE,
    ("consent", "bool_type"): CONSENT_MESSAGE,
    ("consent", "bool_parsing"): CONSENT_MESSAGE,
    ("first_name", "string_too_long"): (
        f"Please keep your first name to {FIRST_NAME_MAX} characters."
    ),
    ("email", "string_too_long"): "Please check your email address: it is too long.",
}


def plain_message(err: Mapping[str, Any]) -> str:
    """One validation error in plain English (the first element of ``loc`` is the field)."""
    name = str(err["loc"][0]) if err.get("loc") else ""
    kind = str(err.get("type", ""))
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return _PLAIN_BY_FIELD.get((name, kind)) or _PLAIN.get(kind) or "Please check this."


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """The API's 422 ``detail``: each bad field (``loc``), what is wrong (``msg``) and pydantic's
    ``type``; never the rejected value (it may be personal)."""
    return [
        {
            "loc": ["body", *[str(p) for p in err["loc"]]],
            "msg": plain_message(err),
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]


def field_errors(exc: ValidationError) -> dict[str, str]:
    """``{field: message}`` for each bad field (the first problem of each), for the form."""
    out: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        name = str(err["loc"][0]) if err["loc"] else "body"
        out.setdefault(name, plain_message(err))
    return out


@dataclass(frozen=True)
class Confirmation:
    """A confirmation email to queue after a signup.

    ``held`` names the held request (:mod:`subscribers.held`) when the address was already
    ours, None for a new subscriber. ``urgent``: warning signs were ticked, so the email
    carries a short, general urgent-care note (it never names what was ticked)."""

    subscriber_id: int
    held: str | None
    urgent: bool


def register(
    conn: Connection,
    req: SignupRequest,
    *,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
) -> Confirmation | None:
    """Store a signup; returns the confirmation email to send, if any.

    A new address becomes an unconfirmed subscriber with its consent events. For an address we
    already hold (unconfirmed, confirmed or unsubscribed) nothing about that person changes:
    the request is held apart until the owner confirms it through the emailed link. A
    suppressed address (bounced, complained, erased) gets nothing, and so does a request
    identical to one already waiting. Safe under concurrency: the same new address posted at
    once by several workers makes one subscriber (the insert yields on the unique key).
    """
    key = req.email.lower()
    if store.is_suppressed(conn, key):
        return None
    ip = (ip or None) and ip[:64]
    user_agent = (user_agent or None) and user_agent[:500]
    urgent = has_red_flag(req.symptoms)
    sid = _insert_new(conn, req, key, now)
    if sid is not None:
        store.set_symptoms(conn, sid, req.symptoms)
        _consent_given(
            conn, sid, with_health=bool(req.symptoms), at=now, ip=ip, user_agent=user_agent
        )
        return Confirmation(sid, None, urgent)
    row = conn.execute(
        select(subscribers.c.id, subscribers.c.status, subscribers.c.first_name)
        .add_columns(subscribers.c.timezone)
        .where(subscribers.c.email_key == key)
    ).first()
    if row is None:  # erased between our insert and this read: nothing to confirm
        return None
    if row.status == store.UNCONFIRMED and _same_as_stored(conn, row, req):
        return None  # the same signup again (a double click, a retry): its email is queued
    public_id = held.hold(
        conn,
        row.id,
        first_name=req.first_name,
        timezone=req.timezone,
        symptoms=req.symptoms,
        ip=ip,
        user_agent=user_agent,
        now=now,
    )
    return Confirmation(row.id, public_id, urgent) if public_id else None


def _same_as_stored(conn: Connection, row: Any, req: SignupRequest) -> bool:
    if (row.first_name, row.timezone) != (req.first_name, req.timezone):
        return False
    return store.symptoms_of(conn, [row.id]).get(row.id, frozenset()) == frozenset(req.symptoms)


def _insert_new(conn: Connection, req: SignupRequest, key: str, now: datetime) -> int | None:
    stmt = (
        dialect_insert(conn, subscribers)
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
        .on_conflict_do_nothing(index_elements=[subscribers.c.email_key])
        .returning(subscribers.c.id)
    )
    found = conn.execute(stmt).scalar_one_or_none()
    return None if found is None else int(found)


def confirm(conn: Connection, subject: str, now: datetime) -> int | None:
    """Apply a confirmation link's POST; returns the subscriber's id (None: nothing to confirm,
    the request expired or was already used).

    ``subject`` is what the signed token carried: a subscriber's own public id (a new signup),
    or a held request (:func:`subscribers.held.token_subject`), whose name, zone and symptoms
    are applied now, as asked. Warning signs already on record stay on record. The caller
    then enrols the person (or routes them to safety care) as for any confirmation."""
    wanted = held.request_id(subject)
    if wanted is None:
        sid = store.by_public_id(conn, subject)
        if sid is None:
            return None
        _mark_confirmed(conn, sid, now, held_request=False)
        return sid
    request = held.take(conn, wanted, now)
    if request is None:
        return None
    sid = request.subscriber_id
    person = store.profiles(conn, [sid]).get(sid)
    if person is None:
        return None
    values: dict[str, Any] = {"updated_at": now}
    if request.first_name:
        values["first_name"] = request.first_name
    if request.timezone:
        values["timezone"] = request.timezone
    conn.execute(update(subscribers).where(subscribers.c.id == sid).values(**values))
    codes = request.symptoms | (person.symptoms & RED_FLAGS)
    if codes != person.symptoms:
        store.set_symptoms(conn, sid, codes)
    _consent_given(
        conn,
        sid,
        with_health=bool(request.symptoms),
        at=request.created_at,
        ip=request.ip,
        user_agent=request.user_agent,
    )
    _mark_confirmed(conn, sid, now, held_request=True)
    return sid


def _mark_confirmed(conn: Connection, sid: int, now: datetime, *, held_request: bool) -> None:
    """A subscriber's own link confirms only an unconfirmed signup (an old link must not
    re-subscribe someone who left since); a held request, confirmed by the owner, also brings
    back someone who had unsubscribed."""
    was = [store.UNCONFIRMED, store.UNSUBSCRIBED] if held_request else [store.UNCONFIRMED]
    changed = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == sid, subscribers.c.status.in_(was))
        .values(status=store.CONFIRMED, confirmed_at=now, updated_at=now)
    ).rowcount
    if changed or held_request:
        store.record_consent(
            conn,
            sid,
            purpose=store.EMAIL_PURPOSE,
            action="confirmed",
            at=now,
            source="double-opt-in",
        )


def _consent_given(
    conn: Connection,
    sid: int,
    *,
    with_health: bool,
    at: datetime,
    ip: str | None,
    user_agent: str | None,
) -> None:
    """The consent the signup form asked for: weekly email, and keeping symptoms if any."""
    purposes = [store.EMAIL_PURPOSE] + ([store.HEALTH_PURPOSE] if with_health else [])
    for purpose in purposes:
        store.record_consent(
            conn,
            sid,
            purpose=purpose,
            action="given",
            at=at,
            source=SOURCE,
            wording_version=consent.VERSION,
            wording_hash=consent.wording_hash(purpose),
            ip=ip,
            user_agent=user_agent,
        )


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
