"""Emails set aside because the provider or the email library refused their content for good
(:data:`~transports.Outcome.REJECTED`: a header with a line break, a message too
large, content refused as such).

Such an email is one (campaign, step, variant) rendered from one content version. Its ledger
rows go back to ``pending`` untouched (nobody is marked failed and, with one campaign email in
flight per person, nobody's series moves on), the email is recorded here (one JSON row in
``kv``) so dispatch stops claiming it, and staff get one alert (:mod:`alerts`) saying which and
why. A new
content version of the campaign (the fix, published) ends the hold at the next tick; so does
``clinicmail transport reset`` (every hold) and ``clinicmail transport release`` (one email).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts import raise_alert
from storage import Database, kvstate
from templates.system import MESSAGE_ALERT

log = logging.getLogger("clinicmail.dispatch")
KEY = "delivery.set_aside"


@dataclass
class SetAsideState(kvstate.JsonState):
    # "campaign|step|variant" -> {"since", "reason", "version"}
    emails: dict[str, dict[str, Any]] = field(default_factory=dict)


def _key(email: tuple[str, str, str]) -> str:
    return "|".join(email)


def _email(key: str) -> tuple[str, str, str]:
    c, s, v = key.split("|", 2)
    return c, s, v


def held(db: Database, version_of: Any) -> list[tuple[str, str, str]]:
    """The emails set aside now. ``version_of(campaign_id)`` gives the campaign's current
    content version: a hold recorded for an older version is over (the content was fixed)."""
    with db.begin() as conn:
        state = SetAsideState.load(kvstate.read(conn, KEY))
    return [
        _email(k)
        for k, v in state.emails.items()
        if v.get("version") is None or v.get("version") == version_of(_email(k)[0])
    ]


def entries(db: Database) -> list[dict[str, Any]]:
    """Every recorded hold, for the ops page and ``transport status``."""
    with db.begin() as conn:
        state = SetAsideState.load(kvstate.read(conn, KEY))
    out = []
    for k, v in sorted(state.emails.items()):
        c, s, var = _email(k)
        out.append({"campaign_id": c, "step_id": s, "variant_id": var, **v})
    return out


def set_aside(
    db: Database, email: tuple[str, str, str], reason: str, version: str | None, now: datetime
) -> bool:
    """Record ``email`` as set aside; True when it is new (log and alert once)."""
    with db.begin() as conn:
        state = SetAsideState.load(kvstate.read_locked(conn, KEY, SetAsideState().dump()))
        key = _key(email)
        current = state.emails.get(key)
        if current is not None and current.get("version") == version:
            return False
        state.emails[key] = {"since": now.isoformat(), "reason": reason, "version": version}
        kvstate.write(conn, KEY, state.dump())
        raise_alert(
            conn,
            MESSAGE_ALERT,
            f"{key}@{now.isoformat()}",
            {"email": "/".join(email), "reason": reason},
            now,
        )
    log.error(
        "email %s/%s/%s is set aside: %s; staff alerted, nobody's series moves", *email, reason
    )
    return True


def unalerted(db: Database) -> list[dict[str, Any]]:
    return [e for e in entries(db) if not e.get("alerted")]


def mark_alerted(db: Database, email: tuple[str, str, str]) -> None:
    with db.begin() as conn:
        state = SetAsideState.load(kvstate.read_locked(conn, KEY, SetAsideState().dump()))
        if _key(email) in state.emails:
            state.emails[_key(email)]["alerted"] = True
            kvstate.write(conn, KEY, state.dump())


def release(db: Database, email: tuple[str, str, str]) -> dict[str, Any] | None:
    """Forget the hold on one email (``clinicmail transport release``); its rows are claimed
    at the next tick. Returns the hold it had, or None when that email was not set aside."""
    with db.begin() as conn:
        state = SetAsideState.load(kvstate.read_locked(conn, KEY, SetAsideState().dump()))
        entry = state.emails.pop(_key(email), None)
        if entry is not None:
            kvstate.write(conn, KEY, state.dump())
    return entry


def clear(db: Database, version_of: Any | None = None) -> int:
    """Forget holds: all of them, or (with ``version_of``) those whose content changed since."""
    with db.begin() as conn:
        state = SetAsideState.load(kvstate.read_locked(conn, KEY, SetAsideState().dump()))
        before = len(state.emails)
        if version_of is None:
            state.emails = {}
        else:
            state.emails = {
                k: v
                for k, v in state.emails.items()
                if v.get("version") is None or v.get("version") == version_of(_email(k)[0])
            }
        if len(state.emails) != before:
            kvstate.write(conn, KEY, state.dump())
    return before - len(state.emails)
