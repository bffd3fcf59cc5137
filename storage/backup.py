"""One archive holding everything an installation cannot lose: the database and the key file.

``clinicmail backup FILE`` writes a gzipped tar with three members:

* ``database.sqlite3`` (SQLite's online backup API: a consistent copy while the service runs)
  or ``database.pgdump`` (``pg_dump --format=custom`` for PostgreSQL);
* ``clinicmail.keys``: the key file (link-signing keys and the suppression-list key); without
  it links already in inboxes stop working and the suppression list cannot be matched;
* ``manifest.json``: the clinicmail version, the backend, the schema revisions and the SHA-256
  of each other member.

``clinicmail restore FILE`` checks the manifest (format, backend, checksums, a schema this
version knows), refuses to replace a database that holds data unless told to (``--force``),
puts the database and the key file back (a key file it replaces is kept beside it as
``….replaced-<time>``), and leaves the installation as the backup found it: a schema older
than this version's is then upgraded with ``clinicmail upgrade``. Every file written is mode
0600.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, inspect, select, table
from sqlalchemy.exc import DBAPIError

from core.errors import InputError
from storage.db import Database, known_revisions, package_version
from storage.keys import CHECK_ROW, write_key_file
from storage.schema import kv

FORMAT = "clinicmail-backup/1"
MANIFEST = "manifest.json"
KEYS = "clinicmail.keys"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"
# Tables whose rows mean "this database is in use": restoring over them needs --force.
DATA_TABLES = ("subscribers", "sends", "staff_users")


class BackupError(InputError, RuntimeError):
    """A backup or restore that cannot be done as asked (one line for the operator)."""


@dataclass(frozen=True)
class Manifest:
    version: str
    backend: str
    schema_revisions: tuple[str, ...]
    created_at: str
    files: dict[str, str]  # member name -> sha256

    def as_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "clinicmail_version": self.version,
                "backend": self.backend,
                "schema_revisions": list(self.schema_revisions),
                "created_at": self.created_at,
                "files": {name: {"sha256": digest} for name, digest in self.files.items()},
            },
            indent=2,
        )

    @classmethod
    def parse(cls, text: bytes) -> Manifest:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(data.get("format"))
            return cls(
                version=str(data["clinicmail_version"]),
                backend=str(data["backend"]),
                schema_revisions=tuple(str(r) for r in data["schema_revisions"]),
                created_at=str(data["created_at"]),
                files={str(k): str(v["sha256"]) for k, v in data["files"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BackupError(
                "the archive's manifest is not a clinicmail backup manifest"
            ) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _private_dir(parent: Path) -> tempfile.TemporaryDirectory[str]:
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=parent, prefix=".clinicmail-backup-")


def _libpq_env(db: Database) -> dict[str, str]:
    """The connection as libpq's environment variables: the password never reaches argv."""
    url = db.url
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
        ("PGSSLMODE", url.query.get("sslmode")),
    ):
        if isinstance(value, str) and value:
            env[name] = value
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed; install the PostgreSQL client tools "
            "(Debian/Ubuntu: apt install postgresql-client)"
        )
    return found


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (our own argv, no shell)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BackupError(f"{Path(args[0]).name} failed: {lines[0] if lines else done.returncode}")


def _dump_database(db: Database, into: Path) -> str:
    """Write a consistent copy of the database into the folder ``into``; its member name."""
    if db.is_sqlite:
        source = db.file
        if source is None or not source.exists():
            raise BackupError("there is no database file to back up; run 'clinicmail init' first")
        target = into / SQLITE_MEMBER
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
        src = sqlite3.connect(source)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # the online backup API: consistent while writers carry on
        finally:
            dst.close()
            src.close()
        return SQLITE_MEMBER
    if db.is_postgres:
        target = into / PG_MEMBER
        _run(
            [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target)],
            _libpq_env(db),
        )
        target.chmod(0o600)
        return PG_MEMBER
    raise BackupError(f"backing up a {db.dialect} database is not supported")


def _private_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
    return info


def _before_key_file(db: Database) -> bool:
    """True for a database set up before the key file existed, whose key file is not there."""
    assert db.key_file is not None
    if db.key_file.exists():
        return False
    with db.engine.connect() as conn:
        return conn.execute(select(kv.c.value).where(kv.c.key == CHECK_ROW)).scalar() is None


def backup(db: Database, dest: Path) -> Manifest:
    """Write one archive at ``dest`` (mode 0600) with the database, the key file and a
    manifest. The schema may be older than this version's (a backup before an upgrade)."""
    found = db.schema_revisions()
    if not found:
        raise BackupError("the database has no clinicmail schema to back up")
    if db.key_file is None:
        raise BackupError("an in-memory database cannot be backed up")
    # A database from before the key file (its signing key still in the database, moved out
    # by the upgrade) has none to carry; otherwise a missing, damaged or world-readable key
    # file is refused.
    key_path = None if _before_key_file(db) else db.keys().path
    dest = dest.expanduser().absolute()
    with _private_dir(dest.parent) as tmp_name:
        tmp = Path(tmp_name)
        member = _dump_database(db, tmp)
        names = [member]
        if key_path is not None:
            shutil.copyfile(key_path, tmp / KEYS)
            (tmp / KEYS).chmod(0o600)
            names.append(KEYS)
        manifest = Manifest(
            version=package_version(),
            backend="sqlite" if db.is_sqlite else "postgresql",
            schema_revisions=tuple(sorted(found)),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            files={name: _sha256(tmp / name) for name in names},
        )
        (tmp / MANIFEST).write_text(manifest.as_json(), encoding="utf-8")
        partial = tmp / "archive.tar.gz"
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY, 0o600))
        with tarfile.open(partial, "w:gz") as tar:
            for name in (MANIFEST, *names):
                tar.add(tmp / name, arcname=name, filter=_private_member)
        os.replace(partial, dest)
    return manifest


def _read_archive(src: Path) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and the members, every checksum verified (members are read, never
    extracted by the names the archive gives)."""
    try:
        with tarfile.open(src, "r:*") as tar:
            members: dict[str, bytes] = {}
            for info in tar.getmembers():
                if info.isfile() and info.name in (MANIFEST, KEYS, SQLITE_MEMBER, PG_MEMBER):
                    fh = tar.extractfile(info)
                    assert fh is not None
                    members[info.name] = fh.read()
    except FileNotFoundError:
        raise BackupError(f"no backup at {src}") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{src} is not a readable clinicmail backup ({exc})") from None
    if MANIFEST not in members:
        raise BackupError(f"{src} is not a clinicmail backup (it has no manifest)")
    manifest = Manifest.parse(members[MANIFEST])
    for name, digest in manifest.files.items():
        if name not in members:
            raise BackupError(f"the backup is incomplete: {name} is missing")
        if hashlib.sha256(members[name]).hexdigest() != digest:
            raise BackupError(f"the backup is damaged: {name} does not match its checksum")
    return manifest, members


def holds_data(db: Database) -> int:
    """How many rows of people, sends and staff accounts the database holds (0: none, or no
    database at all)."""
    if not db.exists():
        return 0
    try:
        with db.engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return sum(
                int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())
                for name in DATA_TABLES
                if name in present
            )
    except DBAPIError as exc:  # an unreachable server: say so rather than restore blindly
        raise BackupError(f"cannot open the database to restore into: {exc.orig}") from None


def _restore_sqlite(db: Database, data: bytes) -> None:
    target = db.file
    if target is None:
        raise BackupError("an in-memory database cannot be restored into")
    db.dispose()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".clinicmail-restore-")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        check = sqlite3.connect(tmp)
        try:
            ok = check.execute("PRAGMA integrity_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"the backed-up database cannot be read: {exc}") from None
        finally:
            check.close()
        if not ok or ok[0] != "ok":
            raise BackupError("the backed-up database fails SQLite's integrity check")
        for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# Every table, view, sequence and function of ours in the public schema (an extension's own
# functions stay), so the dump restores into an empty schema.
_CLEAR_PUBLIC = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT viewname FROM pg_views WHERE schemaname = 'public' LOOP
    EXECUTE format('DROP VIEW IF EXISTS public.%I CASCADE', r.viewname);
  END LOOP;
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
    EXECUTE format('DROP TABLE IF EXISTS public.%I CASCADE', r.tablename);
  END LOOP;
  FOR r IN SELECT sequence_name FROM information_schema.sequences
           WHERE sequence_schema = 'public' LOOP
    EXECUTE format('DROP SEQUENCE IF EXISTS public.%I CASCADE', r.sequence_name);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND NOT EXISTS (
             SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.sig);
  END LOOP;
END $$
"""


def _restore_postgres(db: Database, data: bytes) -> None:
    # Drop what is there first (tables of a newer schema too), then restore in one transaction.
    raw = db.engine.raw_connection()  # the driver's own: no parameter markers in the way
    try:
        raw.cursor().execute(_CLEAR_PUBLIC)
        raw.commit()
    finally:
        raw.close()
    db.dispose()
    with tempfile.TemporaryDirectory(prefix="clinicmail-restore-") as tmp_name:
        dump = Path(tmp_name) / PG_MEMBER
        os.close(os.open(dump, os.O_CREAT | os.O_WRONLY, 0o600))
        dump.write_bytes(data)
        _run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--dbname",
                db.url.database or "",
                str(dump),
            ],
            _libpq_env(db),
        )


def restore(db: Database, src: Path, *, force: bool = False) -> Manifest:
    """Put the database and the key file from the archive at ``src`` back in place."""
    manifest, members = _read_archive(src.expanduser())
    backend = "sqlite" if db.is_sqlite else "postgresql" if db.is_postgres else db.dialect
    if manifest.backend != backend:
        raise BackupError(
            f"the backup holds a {manifest.backend} database and CLINICMAIL_DATABASE_URL "
            f"names a {backend} one"
        )
    unknown = set(manifest.schema_revisions) - known_revisions()
    if unknown:
        raise BackupError(
            f"the backup was made by clinicmail {manifest.version}, whose schema this version "
            f"({package_version()}) does not know; install clinicmail {manifest.version} or newer"
        )
    if db.key_file is None:
        raise BackupError("an in-memory database cannot be restored into")
    rows = holds_data(db)
    if rows and not force:
        raise BackupError(
            f"the database holds data ({rows} rows of people, sends and accounts); "
            "restore --force replaces it"
        )
    member = SQLITE_MEMBER if db.is_sqlite else PG_MEMBER
    if member not in manifest.files:
        raise BackupError("the backup holds no database")
    if db.is_sqlite:
        _restore_sqlite(db, members[member])
    else:
        _restore_postgres(db, members[member])
    if KEYS not in members:
        return manifest
    key_text = members[KEYS].decode("utf-8")
    if db.key_file.exists() and db.key_file.read_text(encoding="utf-8") != key_text:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        db.key_file.rename(db.key_file.with_name(f"{db.key_file.name}.replaced-{stamp}"))
    try:
        write_key_file(db.key_file, key_text)
    except ValueError:
        raise BackupError("the backup's key file is damaged") from None
    return manifest
