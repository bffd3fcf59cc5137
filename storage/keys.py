"""The installation's generated secrets, kept in a file outside the database.

Two keys live in one small JSON file written once with mode 0600:

* ``signing`` signs every token in links when ``CLINICMAIL_SECRET_KEY`` is unset;
* ``suppression`` keys the HMAC-SHA256 that turns an address into its suppression-list entry.

Neither is in the database, so a database backup alone cannot forge links or test a list of
guessed addresses against the suppression list. Where the file is: ``CLINICMAIL_SECRET_KEY_FILE``
when set; else beside the SQLite database (``clinicmail.db`` → ``clinicmail.db.keys``); else, for
a server database such as PostgreSQL, ``clinicmail.keys`` in the working directory (where the
``.env`` file is read from too). Every process that uses one database must read the same file.

The database records a short fingerprint of the suppression key (``kv.key_check``). A process
that finds a different key file, or none after one was made, stops with one clear line instead
of quietly forgetting every suppression.

Installations from before this file existed kept the signing key in the database (``kv
.secret_key``): the first start moves it into the file and deletes the row, so links already
in inboxes keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, delete, inspect, select
from sqlalchemy.engine import URL

from core.errors import ConfigError
from storage.schema import kv
from storage.sql import dialect_insert

DEFAULT_FILE = "clinicmail.keys"
LEGACY_SIGNING_ROW = "secret_key"
CHECK_ROW = "key_check"


class KeyFileError(ConfigError, RuntimeError):
    """The key file is missing, unreadable or belongs to another database (one line)."""


@dataclass(frozen=True)
class InstallationKeys:
    signing: str
    suppression: bytes
    path: Path | None  # None for an in-memory database: nothing outlives the process

    @property
    def check(self) -> str:
        """A fingerprint that identifies the suppression key without revealing it."""
        return hmac.new(self.suppression, b"clinicmail.key-check", hashlib.sha256).hexdigest()[:16]


def key_file_for(url: URL, configured: str | None = None) -> Path | None:
    """Where the keys of the database at ``url`` live (None: in memory only)."""
    if configured:
        return Path(configured).expanduser()
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
        db_path = Path(url.database).expanduser()
        return db_path.with_name(db_path.name + ".keys")
    return Path.cwd() / DEFAULT_FILE


def _fresh(signing: str | None = None) -> dict[str, str]:
    return {
        "signing": signing or secrets.token_urlsafe(48),
        "suppression": secrets.token_hex(32),
    }


def _parse(path: Path, text: str) -> InstallationKeys:
    try:
        data = json.loads(text)
        return InstallationKeys(
            signing=str(data["signing"]),
            suppression=bytes.fromhex(str(data["suppression"])),
            path=path,
        )
    except (ValueError, KeyError, TypeError):
        raise KeyFileError(f"the key file {path} is damaged; restore it from a backup") from None


def read_keys(path: Path) -> InstallationKeys | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    return _parse(path, text)


def _create(path: Path, content: dict[str, str]) -> InstallationKeys:
    """Write the file atomically with mode 0600; if another process won the race, read theirs."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".clinicmail-keys-")
    except OSError as exc:
        raise KeyFileError(f"cannot create the key file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            json.dump(content, fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and fails if the file appeared meanwhile
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    found = read_keys(path)
    assert found is not None
    return found


def _kv(conn: Connection, key: str) -> str | None:
    value = conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar_one_or_none()
    return None if value is None else str(value)


def ephemeral_keys() -> InstallationKeys:
    content = _fresh()
    return InstallationKeys(content["signing"], bytes.fromhex(content["suppression"]), None)


def open_keys(engine: Engine, path: Path | None) -> InstallationKeys:
    """Load (or create once) the keys for the database behind ``engine``.

    Moves a signing key stored in the database by older versions into the file, and checks the
    file against the fingerprint the database holds. Raises :class:`KeyFileError`.
    """
    if path is None:
        return ephemeral_keys()
    with engine.begin() as conn:
        has_kv = inspect(conn).has_table(kv.name)
        legacy = _kv(conn, LEGACY_SIGNING_ROW) if has_kv else None
        check = _kv(conn, CHECK_ROW) if has_kv else None
    keys = read_keys(path)
    if keys is None:
        if check is not None:
            raise KeyFileError(
                f"the key file {path} is missing but this database was set up with one; "
                "restore it (or point CLINICMAIL_SECRET_KEY_FILE at it)"
            )
        keys = _create(path, _fresh(legacy))
    elif check is not None and check != keys.check:
        raise KeyFileError(
            f"the key file {path} belongs to another database; "
            "point CLINICMAIL_SECRET_KEY_FILE at this database's key file"
        )
    if has_kv:
        with engine.begin() as conn:
            if check is None:
                conn.execute(
                    dialect_insert(conn, kv)
                    .values(key=CHECK_ROW, value=keys.check)
                    .on_conflict_do_nothing()
                )
            if legacy is not None:
                # The file holds it now: a database backup no longer carries the signing key.
                conn.execute(delete(kv).where(kv.c.key == LEGACY_SIGNING_ROW))
    return keys


class HasKeys(Protocol):
    def keys(self) -> InstallationKeys: ...


# Which keys belong to which engine, so set-based store functions that only see a Connection
# can hash addresses without every caller passing the key along. Weak both ways: a disposed
# Database leaves nothing behind.
_BY_ENGINE: WeakKeyDictionary[Engine, weakref.ref[HasKeys]] = WeakKeyDictionary()


def register(engine: Engine, owner: HasKeys) -> None:
    _BY_ENGINE[engine] = weakref.ref(owner)


def keys_of(conn: Connection) -> InstallationKeys:
    ref = _BY_ENGINE.get(conn.engine)
    owner = ref() if ref is not None else None
    if owner is None:
        raise KeyFileError("this connection's database was not opened through storage.Database")
    return owner.keys()


def suppression_hash(conn: Connection, email_key: str) -> str:
    """HMAC-SHA256 of a lower-cased address under the installation's suppression key."""
    return suppression_hasher(conn)(email_key)


def suppression_hasher(conn: Connection) -> Callable[[str], str]:
    """:func:`suppression_hash` for many addresses: the key looked up and the HMAC keyed once,
    then copied per address (a planning batch hashes a thousand)."""
    keyed = hmac.new(keys_of(conn).suppression, digestmod=hashlib.sha256)

    def hash_one(email_key: str) -> str:
        mac = keyed.copy()
        mac.update(email_key.strip().lower().encode("utf-8"))
        return mac.hexdigest()

    return hash_one
