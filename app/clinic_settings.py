"""The settings a clinic changes in the staff console, stored in the database over the
environment's.

The environment (and ``.env``) gives every setting; staff with the ``ops`` role may change the
few a clinic looks after itself (:data:`EDITABLE`: its name and address, the booking link, the
brand colour and logo, the care lines, the send window, quiet days and holidays). A stored value
wins over the environment's. The stored values are laid over the environment's settings with
:func:`overlay`, which runs the same pydantic validation as start-up, so a value the environment
would refuse is refused here too, with the same words.

Every change is audited (who, which settings, from what to what) in the transaction that
stores it. Resetting a setting deletes its row, and the environment's value applies again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, delete, select

from app.settings import Settings, SettingsError
from app.tables import setting_overrides
from core.errors import InputError
from staff import audit
from staff.accounts import StaffUser
from storage import Database
from storage.sql import dialect_insert


@dataclass(frozen=True)
class Editable:
    """One setting staff may change: its :class:`Settings` field, a label and a hint."""

    name: str
    label: str
    hint: str
    required: bool = False


EDITABLE: tuple[Editable, ...] = (
    Editable("clinic_name", "Clinic name", "Shown in every email and as the sender's name.", True),
    Editable(
        "clinic_address",
        "Postal address",
        "The address every email's footer shows (the law requires one).",
        True,
    ),
    Editable(
        "booking_url",
        "Booking link",
        "Where “Book an assessment” goes: an https:// page, or a mailto: or tel: link. "
        "Empty: a reply email to the clinic.",
    ),
    Editable(
        "brand_colour",
        "Brand colour",
        "Headings and the button in every email, as #rrggbb; dark enough for white button text.",
        True,
    ),
    Editable("logo_url", "Logo", "An https:// image address. Empty: no logo.", False),
    Editable(
        "emergency_number",
        "Emergency number",
        "Named wherever an email or page gives health advice, e.g. 999, 911 or 112.",
        True,
    ),
    Editable(
        "urgent_advice",
        "Urgent advice line",
        "Named beside the emergency number, e.g. NHS 111.",
        True,
    ),
    Editable(
        "family_doctor",
        "Family doctor",
        "What the clinic's patients call their family doctor, e.g. GP.",
        True,
    ),
    Editable(
        "send_window",
        "Send window",
        "Local hours in each person's time zone when campaign email may go out, e.g. 08:00-20:00.",
        True,
    ),
    Editable(
        "quiet_days",
        "Quiet days",
        "Weekdays without campaign email, comma-separated, e.g. sat,sun. Empty: none.",
    ),
    Editable(
        "holidays",
        "Holidays",
        "Dates without campaign email, comma-separated, e.g. 2026-12-25,2026-12-26. Empty: none.",
    ),
)
BY_NAME = {e.name: e for e in EDITABLE}


class InvalidSettings(InputError, ValueError):
    """Values that do not validate; ``problems`` maps each bad field to what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{env_name(k)}: {v}" for k, v in problems.items()))
        self.problems = problems


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field (``CLINICMAIL_CLINIC_NAME``)."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else field.upper()


def as_text(value: object) -> str:
    """A setting's value as staff see and store it (unset is empty)."""
    return "" if value is None else str(value)


def stored(conn: Connection) -> dict[str, str]:
    """The stored values, by field name (only the editable ones count)."""
    rows = conn.execute(select(setting_overrides.c.name, setting_overrides.c.value)).all()
    return {name: value for name, value in rows if name in BY_NAME}


def stored_rows(conn: Connection) -> dict[str, tuple[str, datetime, str]]:
    """Each stored value with when and by whom it was set."""
    rows = conn.execute(select(setting_overrides)).all()
    return {r.name: (r.value, r.updated_at, r.updated_by) for r in rows if r.name in BY_NAME}


def overlay(base: Settings, values: Mapping[str, str]) -> Settings:
    """``base`` with ``values`` (field name → text) laid over it, validated by the same rules
    as start-up. Raises :class:`InvalidSettings` naming every bad field."""
    problems: dict[str, str] = {}
    for name, text in values.items():
        if name not in BY_NAME:
            problems[name] = "cannot be changed in the console"
        elif BY_NAME[name].required and not text.strip():
            problems[name] = "must not be empty"
    data: dict[str, Any] = base.model_dump()
    data.update({k: v for k, v in values.items() if k not in problems})
    try:
        result = type(base).model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "configuration"
            problems.setdefault(field, err["msg"].removeprefix("Value error, "))
    if problems:
        raise InvalidSettings(problems)
    return result


def effective(base: Settings, conn: Connection) -> Settings:
    """The settings the service runs with: ``base`` (the environment's) with the stored values
    laid over it. A stored value the environment now makes invalid stops start-up with one line
    naming it, as a bad environment variable does."""
    values = stored(conn)
    if not values:
        return base
    try:
        return overlay(base, values)
    except InvalidSettings as exc:
        raise SettingsError(f"{exc} (a value saved in the console's clinic settings)") from None


def save(
    db: Database,
    base: Settings,
    changes: Mapping[str, str | None],
    actor: StaffUser,
    now: datetime,
) -> dict[str, dict[str, str]]:
    """Store ``changes`` (field name → text; None goes back to the environment's value) after
    validating the whole result, and audit them in the same transaction. Returns what changed,
    by field: ``{"from": …, "to": …}`` as effective values. Raises :class:`InvalidSettings`
    and stores nothing when any value is bad."""
    with db.begin() as conn:
        current = stored(conn)
        wanted = dict(current)
        for name, text in changes.items():
            if text is None:
                wanted.pop(name, None)
            else:
                wanted[name] = text
        before = overlay(base, current) if current else base
        after = overlay(base, wanted)
        # Store the normalized form (a colour in lower case, care lines with single spaces).
        wanted = {name: as_text(getattr(after, name)) for name in wanted}
        changed = {
            name: {"from": as_text(getattr(before, name)), "to": as_text(getattr(after, name))}
            for name in BY_NAME
            if current.get(name) != wanted.get(name)
        }
        if not changed:
            return {}
        gone = [name for name in current if name not in wanted]
        if gone:
            conn.execute(delete(setting_overrides).where(setting_overrides.c.name.in_(gone)))
        for name, text in wanted.items():
            if current.get(name) == text:
                continue
            row = {"name": name, "value": text, "updated_at": now, "updated_by": actor.email}
            insert = dialect_insert(conn, setting_overrides).values(**row)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[setting_overrides.c.name],
                    set_={k: v for k, v in row.items() if k != "name"},
                )
            )
        audit.record(
            conn,
            actor,
            "settings.change",
            "settings",
            ",".join(sorted(changed)),
            now,
            {"changes": changed, "reset": sorted(gone)},
        )
    return changed
