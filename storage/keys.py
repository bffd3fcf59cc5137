"""The installation's generated secrets, kept in a file outside the database.

The keys live in one small JSON file with mode 0600 (a file found readable by others is
refused, with the ``chmod`` that fixes it):

* ``signing_keys`` sign every token in links when ``CLINICMAIL_SECRET_KEY`` is unset: the newest
  signs new links, every older one still verifies links already sent (``clinicmail keys rotate``
  adds one; each has a short public id and the time it was made). ``signing`` repeats the newest,
  the form older versions read;
* ``suppression`` keys the HMAC-SHA256 that turns an address into its suppression-list entry.

Neither is in the database, so a database backup alone cannot forge links or test a list of
guessed addresses against the suppression list (``clinicmail backup`` puts both in its archive).
Where the file is (:func:`key_file_for`): ``CLINICMAIL_SECRET_KEY_FILE`` when set; else
``clinicmail.keys`` in ``CLINICMAIL_DATA_DIR`` when set; else beside the SQLite database
(``clinicmail.db`` → ``clinicmail.db.keys``); else, for a server database such as PostgreSQL,
``clinicmail.keys`` in the per-user state directory (``$XDG_STATE_HOME/clinicmail``, by default
``~/.local/state/clinicmail``), the same whichever directory a command is run from. Every
process that uses one database must read the same file.

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
import stat
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
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
class SigningKey:
    """One link-signing key: ``id`` is a public fingerprint, safe to show; ``created`` may be
    None for a key made before keys carried their age."""

    id: str
    secret: str
    created: datetime | None


def key_id(secret: str) -> str:
    """A short public name for a signing key (a fingerprint: it does not reveal the key)."""
    return hashlib.sha256(b"clinicmail.key-id:" + secret.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class InstallationKeys:
    signing_keys: tuple[SigningKey, ...]  # oldest first; the newest signs new links
    suppression: bytes
    path: Path | None  # None for an in-memory database: nothing outlives the process

    @property
    def signing(self) -> str:
        """The key new links are signed with."""
        return self.signing_keys[-1].secret

    @property
    def secrets(self) -> list[str]:
        """Every signing key, newest last (the order :class:`subscribers.tokens.Tokens` takes)."""
        return [k.secret for k in self.signing_keys]

    @property
    def check(self) -> str:
        """A fingerprint that identifies the suppression key without revealing it."""
        return hmac.new(self.suppression, b"clinicmail.key-check", hashlib.sha256).hexdigest()[:16]


def state_dir() -> Path:
    """The per-user state directory: ``$XDG_STATE_HOME/clinicmail``, else
    ``~/.local/state/clinicmail`` (the XDG Base Directory default)."""
    base = os.environ.get("XDG_STATE_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "clinicmail"


def data_dir_for(url: URL, configured: str | None = None) -> Path | None:
    """The installation's data directory (the key file, backups made before an upgrade):
    ``CLINICMAIL_DATA_DIR`` when set, else beside the SQLite file, else :func:`state_dir`.
    None for an in-memory database."""
    if configured:
        return Path(configured).expanduser().absolute()
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
        return Path(url.database).expanduser().absolute().parent
    return state_dir()


def key_file_for(
    url: URL, configured: str | None = None, data_dir: str | None = None
) -> Path | None:
    """Where the keys of the database at ``url`` live (None: in memory only). ``configured``
    is ``CLINICMAIL_SECRET_KEY_FILE``, ``data_dir`` is ``CLINICMAIL_DATA_DIR``."""
    if configured:
        return Path(configured).expanduser().absolute()
    if data_dir:
        return Path(data_dir).expanduser().absolute() / DEFAULT_FILE
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
        db_path = Path(url.database).expanduser().absolute()
        return db_path.with_name(db_path.name + ".keys")
    return state_dir() / DEFAULT_FILE


def _now() -> datetime:
    return datetime.now(UTC)


def _record(secret: str, created: datetime | None) -> dict[str, Any]:
    return {
        "id": key_id(secret),
        "key": secret,
        "created_at": created.isoformat() if created else None,
    }


def _fresh(signing: str | None = None) -> dict[str, Any]:
    key = signing or secrets.token_urlsafe(48)
    return {
        "signing": key,
        "signing_keys": [_record(key, _now())],
        "suppression": secrets.token_hex(32),
    }


def _parse(path: Path, text: str) -> InstallationKeys:
    try:
        data = json.loads(text)
        records = data.get("signing_keys") or [{"key": str(data["signing"]), "created_at": None}]
        signing = tuple(
            SigningKey(
                id=key_id(str(r["key"])),
                secret=str(r["key"]),
                created=datetime.fromisoformat(r["created_at"]) if r.get("created_at") else None,
            )
            for r in records
        )
        if not signing:
            raise ValueError("no signing key")
        return InstallationKeys(
            signing_keys=signing,
            suppression=bytes.fromhex(str(data["suppression"])),
            path=path,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeyFileError(f"the key file {path} is damaged; restore it from a backup") from None


def check_private(path: Path, what: str = "key file") -> None:
    """Refuse a file others may read or write (one line naming the fix)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise KeyFileError(
            f"the {what} {path} is open to other users (mode {mode:04o}); "
            f"run 'chmod 600 {path}' and try again"
        )


def read_keys(path: Path) -> InstallationKeys | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    check_private(path)
    return _parse(path, text)


def _write_private(path: Path, content: dict[str, Any], *, replace: bool) -> None:
    """Write ``content`` as ``path`` atomically with mode 0600. ``replace``: overwrite an
    existing file (rename); else leave a file another process made meanwhile (link)."""
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
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # atomic, and fails if the file appeared meanwhile
        except FileExistsError:
            pass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _create(path: Path, content: dict[str, Any]) -> InstallationKeys:
    """Write the file atomically with mode 0600; if another process won the race, read theirs."""
    _write_private(path, content, replace=False)
    found = read_keys(path)
    assert found is not None
    return found


def write_key_file(path: Path, text: str) -> None:
    """Put a key file's text (from a backup) in place, mode 0600; it must parse."""
    content = json.loads(text)
    _parse(path, text)
    _write_private(path, content, replace=True)


def rotate(path: Path) -> SigningKey:
    """Add a new signing key to the file at ``path`` (new links use it; the older ones keep
    verifying links already sent). Returns the new key."""
    keys = read_keys(path)
    if keys is None:
        raise KeyFileError(f"no key file at {path}; run 'clinicmail init' to set it up")
    fresh = secrets.token_urlsafe(48)
    records = [_record(k.secret, k.created) for k in keys.signing_keys]
    records.append(_record(fresh, _now()))
    content = {"signing": fresh, "signing_keys": records, "suppression": keys.suppression.hex()}
    _write_private(path, content, replace=True)
    found = read_keys(path)
    assert found is not None
    return found.signing_keys[-1]


def _kv(conn: Connection, key: str) -> str | None:
    value = conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar_one_or_none()
    return None if value is None else str(value)


def ephemeral_keys() -> InstallationKeys:
    key = secrets.token_urlsafe(48)
    return InstallationKeys((SigningKey(key_id(key), key, _now()),), secrets.token_bytes(32), None)


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
            legacy_file = Path.cwd() / DEFAULT_FILE  # a server database's, before the data dir
            if engine.dialect.name != "sqlite" and legacy_file.exists() and legacy_file != path:
                raise KeyFileError(
                    f"this database's key file is {legacy_file}, where older versions kept it; "
                    f"move it to {path} (or set CLINICMAIL_DATA_DIR to its folder)"
                )
            raise KeyFileError(
                f"the key file {path} is missing but this database was set up with one; "
                "restore it from a backup (or set CLINICMAIL_DATA_DIR to the folder that holds it)"
            )
        keys = _create(path, _fresh(legacy))
    elif check is not None and check != keys.check:
        raise KeyFileError(
            f"the key file {path} belongs to another database; "
            "set CLINICMAIL_DATA_DIR to the folder of this database's key file"
        )
    if has_kv and (check is None or legacy is not None):
        # Only when there is something to write: on SQLite every transaction takes the write
        # lock first, and each command and process start opens the keys.
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
