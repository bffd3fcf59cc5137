"""API keys: created with scopes, shown once, stored as a SHA-256 hash, revoked by name.

A key reads ``cm_<prefix>_<secret>``: the prefix (8 hex characters, not secret) names the key
in lists and logs; the secret is 256 random bits, so a plain SHA-256 of the whole key is a safe
thing to store (there is nothing to guess) and finding a key is one indexed look-up.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from api.tables import api_keys, api_requests
from core.errors import InputError

SUBSCRIBERS_READ = "subscribers:read"
SUBSCRIBERS_WRITE = "subscribers:write"
EVENTS_WRITE = "events:write"
STATS_READ = "stats:read"
WEBHOOKS_MANAGE = "webhooks:manage"
SCOPES = (SUBSCRIBERS_READ, SUBSCRIBERS_WRITE, EVENTS_WRITE, STATS_READ, WEBHOOKS_MANAGE)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY = re.compile(r"^cm_([0-9a-f]{8})_[A-Za-z0-9_-]{20,100}$")


class ApiKeyError(InputError, ValueError):
    """A key name, scope or key that cannot be used as given."""


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def parse_scopes(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``subscribers:read,events:write`` (or a list of such) → the scopes, in a stable order."""
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    wanted = {p.strip() for p in parts if p.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    if not wanted:
        raise ApiKeyError(f"name at least one scope with --scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in wanted)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _row(row: object) -> ApiKey:
    m = row._mapping  # type: ignore[attr-defined]
    return ApiKey(
        id=m["id"],
        name=m["name"],
        prefix=m["prefix"],
        scopes=tuple(m["scopes"] or ()),
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )


def create(
    conn: Connection, name: str, scopes: tuple[str, ...], now: datetime
) -> tuple[ApiKey, str]:
    """A new key named ``name`` (unique among keys not revoked); returns it and the key itself,
    which is never stored and cannot be shown again."""
    if not NAME.match(name):
        raise ApiKeyError(
            "a key name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if active_named(conn, name) is not None:
        raise ApiKeyError(f"a key named {name!r} exists: revoke it first or choose another name")
    prefix = secrets.token_hex(4)
    key = f"cm_{prefix}_{secrets.token_urlsafe(32)}"
    conn.execute(
        insert(api_keys).values(
            name=name,
            prefix=f"cm_{prefix}",
            key_hash=digest(key),
            scopes=list(scopes),
            created_at=now,
        )
    )
    made = active_named(conn, name)
    assert made is not None
    return made, key


def active_named(conn: Connection, name: str) -> ApiKey | None:
    row = conn.execute(
        select(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
    ).first()
    return None if row is None else _row(row)


def all_keys(conn: Connection) -> list[ApiKey]:
    return [_row(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.id))]


def revoke(conn: Connection, name: str, now: datetime) -> ApiKey:
    found = active_named(conn, name)
    if found is None:
        raise ApiKeyError(f"no active key named {name!r} (see 'clinicmail apikeys list')")
    conn.execute(update(api_keys).where(api_keys.c.id == found.id).values(revoked_at=now))
    return found


def authenticate(conn: Connection, key: str) -> ApiKey | None:
    """The active key ``key`` is, or None (unknown, malformed or revoked)."""
    if not _KEY.match(key):
        return None
    row = conn.execute(select(api_keys).where(api_keys.c.key_hash == digest(key))).first()
    if row is None:
        return None
    found = _row(row)
    # The hash matched through an index; compare again in constant time all the same.
    if not hmac.compare_digest(row._mapping["key_hash"], digest(key)) or not found.active:
        return None
    return found


def record_use(
    conn: Connection, key_id: int, method: str, route: str, status: int, now: datetime
) -> None:
    """Log one use of a key (its audit trail) and move its ``last_used_at``."""
    conn.execute(
        insert(api_requests).values(
            key_id=key_id, at=now, method=method[:8], route=route[:200], status=status
        )
    )
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))


def uses(conn: Connection, key_id: int, limit: int = 50) -> list[dict[str, object]]:
    rows = conn.execute(
        select(
            api_requests.c.at, api_requests.c.method, api_requests.c.route, api_requests.c.status
        )
        .where(api_requests.c.key_id == key_id)
        .order_by(api_requests.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]
