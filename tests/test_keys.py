"""Generated keys live in a file beside the database (mode 0600), not in the database; a
configured signing key must be long enough; the suppression list uses a keyed hash."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from app.context import AppContext
from app.settings import load_settings
from storage import Database
from storage.keys import CHECK_ROW, DEFAULT_FILE, LEGACY_SIGNING_ROW
from storage.schema import kv
from subscribers import store
from subscribers.tables import SCHEME_HMAC, SCHEME_SHA256, suppressions
from subscribers.tokens import Tokens
from tests.support.cli import CLI, assert_one_line_error

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _kv(db: Database) -> dict[str, str]:
    with db.begin() as conn:
        return {r.key: r.value for r in conn.execute(select(kv))}


def test_init_writes_a_private_key_file_beside_the_database(bare_cli: CLI, tmp_path: Path) -> None:
    sqlite_cli = bare_cli
    run = sqlite_cli("init")
    assert run.code == 0, run.err
    key_file = tmp_path / "clinicmail.db.keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    data = json.loads(key_file.read_text())
    assert len(data["signing"]) >= 32 and len(bytes.fromhex(data["suppression"])) == 32
    db = Database(f"sqlite:///{tmp_path / 'clinicmail.db'}")
    try:
        stored = _kv(db)
        assert LEGACY_SIGNING_ROW not in stored  # a database backup carries no signing key
        assert data["signing"] not in stored.values()
        assert CHECK_ROW in stored
    finally:
        db.dispose()
    # a second start reads the same key: links already sent keep working
    assert sqlite_cli("init").code == 0
    assert json.loads(key_file.read_text()) == data


def test_a_key_stored_in_the_database_moves_to_the_file(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        assert db.key_file is not None
        # An installation from before the key file: the key is in the database, no file.
        db.key_file.unlink()
        with db.begin() as conn:
            conn.execute(kv.delete())
            conn.execute(insert(kv).values(key=LEGACY_SIGNING_ROW, value="old-key-" + "x" * 40))
        old_link = Tokens(["old-key-" + "x" * 40]).make("unsubscribe", "pub123")
    finally:
        db.dispose()
    settings = load_settings(CLINICMAIL_DATABASE_URL=db_url)
    ctx = AppContext.from_settings(settings)
    try:
        ctx.db.migrate()
        assert ctx.tokens.read("unsubscribe", old_link) == "pub123"
        assert LEGACY_SIGNING_ROW not in _kv(ctx.db)
        assert json.loads(Path(str(ctx.db.key_file)).read_text())["signing"].startswith("old-key-")
    finally:
        ctx.close()


def test_the_key_file_lives_in_the_data_directory_whichever_folder_a_command_runs_from(
    cli: CLI, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(db_url)
    try:
        # Default: beside the SQLite file; for a server database the per-user state directory
        # ($XDG_STATE_HOME/clinicmail; the tests give each its own), never the working folder.
        expected = (
            tmp_path / "clinicmail.db.keys"
            if db.is_sqlite
            else tmp_path / "state" / "clinicmail" / DEFAULT_FILE
        )
        assert db.key_file == expected
        assert Database(db_url, data_dir=str(tmp_path / "data")).key_file == (
            tmp_path / "data" / DEFAULT_FILE
        )
        assert Database(db_url, key_file=str(tmp_path / "k" / "keys.json")).key_file == (
            tmp_path / "k" / "keys.json"
        )
    finally:
        db.dispose()
    assert cli("init").code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = cli("tick", "--json")
    assert run.code == 0, run.err
    # CLINICMAIL_DATA_DIR moves it: a new installation there, found from any folder.
    data = tmp_path / "data"
    cli.env("CLINICMAIL_DATA_DIR", str(data))
    if db_url.startswith("sqlite"):
        cli.env("CLINICMAIL_DATABASE_URL", f"sqlite:///{tmp_path / 'second.db'}")
        assert cli("init").code == 0
        assert stat.S_IMODE((data / DEFAULT_FILE).stat().st_mode) == 0o600
        monkeypatch.chdir(tmp_path)
        assert cli("keys", "list").code == 0


def test_a_key_file_open_to_others_is_refused_with_the_fix(sqlite_cli: CLI, tmp_path: Path) -> None:
    assert sqlite_cli("init").code == 0
    key_file = tmp_path / "clinicmail.db.keys"
    key_file.chmod(0o644)
    run = sqlite_cli("stats", "--json")
    assert_one_line_error(run, str(key_file), f"chmod 600 {key_file}")
    key_file.chmod(0o600)
    assert sqlite_cli("stats", "--json").code == 0


def test_database_wal_and_key_file_are_private(sqlite_cli: CLI, tmp_path: Path) -> None:
    assert sqlite_cli("init").code == 0
    assert sqlite_cli("tick", "--json").code == 0
    for name in ("clinicmail.db", "clinicmail.db-wal", "clinicmail.db.keys"):
        path = tmp_path / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert (tmp_path / "clinicmail.db").exists()
    # A database an older version left open to others is made private by init (or upgrade).
    (tmp_path / "clinicmail.db").chmod(0o644)
    assert sqlite_cli("init").code == 0
    assert stat.S_IMODE((tmp_path / "clinicmail.db").stat().st_mode) == 0o600


def test_short_secret_key_is_refused_in_one_line(bare_cli: CLI) -> None:
    sqlite_cli = bare_cli
    sqlite_cli.env("CLINICMAIL_SECRET_KEY", "too-short-secret")
    run = sqlite_cli("init")
    assert run.code == 1
    assert run.err.strip().count("\n") == 0
    assert "CLINICMAIL_SECRET_KEY" in run.err and "32" in run.err
    assert "too-short-secret" not in run.err
    sqlite_cli.env("CLINICMAIL_SECRET_KEY", "k" * 32)
    assert sqlite_cli("init").code == 0


def test_a_lost_or_foreign_key_file_stops_with_one_line(sqlite_cli: CLI, tmp_path: Path) -> None:
    assert sqlite_cli("init").code == 0
    key_file = tmp_path / "clinicmail.db.keys"
    original = key_file.read_text()
    key_file.unlink()
    run = sqlite_cli("stats", "--json")
    assert run.code == 1 and "missing" in run.err and str(key_file) in run.err
    other = json.loads(original)
    other["suppression"] = "00" * 32
    key_file.write_text(json.dumps(other))
    key_file.chmod(0o600)
    run = sqlite_cli("stats", "--json")
    assert run.code == 1 and "another database" in run.err
    assert run.err.strip().count("\n") == 0
    key_file.write_text(original)
    assert sqlite_cli("stats", "--json").code == 0


def test_suppression_list_uses_a_keyed_hash_and_old_entries_still_count(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        bare = hashlib.sha256(b"old@example.com").hexdigest()
        with db.begin() as conn:
            # An entry written before the keyed hash existed.
            conn.execute(
                insert(suppressions).values(email_hash=bare, reason="bounce", created_at=NOW)
            )
            store.suppress(conn, "new@example.com", "complaint", NOW)
        with db.begin() as conn:
            rows = {r.email_hash: r for r in conn.execute(select(suppressions))}
            assert rows[bare].scheme == SCHEME_SHA256
            keyed = hmac.new(db.keys().suppression, b"new@example.com", hashlib.sha256).hexdigest()
            assert rows[keyed].scheme == SCHEME_HMAC
            assert hashlib.sha256(b"new@example.com").hexdigest() not in rows
            assert store.suppressed_keys(
                conn, ["old@example.com", "new@example.com", "free@example.com"]
            ) == {"old@example.com", "new@example.com"}
            # Seeing an old entry's address again re-keys it, keeping its reason and date.
            store.suppress(conn, "old@example.com", "erased", NOW)
        with db.begin() as conn:
            rows = {r.email_hash: r for r in conn.execute(select(suppressions))}
            assert bare not in rows and len(rows) == 2
            assert {r.scheme for r in rows.values()} == {SCHEME_HMAC}
            assert store.is_suppressed(conn, "old@example.com")
            assert "bounce" in {r.reason for r in rows.values()}
    finally:
        db.dispose()


def test_staff_address_defaults_to_the_from_address(sqlite_cli: CLI) -> None:
    assert load_settings(CLINICMAIL_FROM_EMAIL="care@clinic.example").staff_email == (
        "care@clinic.example"
    )
    assert (
        load_settings(
            CLINICMAIL_FROM_EMAIL="care@clinic.example", CLINICMAIL_STAFF_EMAIL="ops@clinic.example"
        ).staff_email
        == "ops@clinic.example"
    )


def test_a_key_file_from_before_rotation_lists_and_rotates(sqlite_cli: CLI, tmp_path: Path) -> None:
    assert sqlite_cli("init").code == 0
    key_file = tmp_path / "clinicmail.db.keys"
    data = json.loads(key_file.read_text())
    # the form versions before `keys rotate` wrote: one signing key, no ids or ages
    key_file.write_text(
        json.dumps({"signing": data["signing"], "suppression": data["suppression"]})
    )
    listed = sqlite_cli("keys", "list")
    assert listed.code == 0 and "age unknown" in listed.out and data["signing"] not in listed.out
    assert sqlite_cli("keys", "rotate").code == 0
    after = json.loads(key_file.read_text())
    assert after["signing_keys"][0]["key"] == data["signing"]
    assert after["signing"] == after["signing_keys"][-1]["key"] != data["signing"]
    assert after["suppression"] == data["suppression"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_server_databases_key_file_left_in_the_working_directory_is_pointed_at(
    cli: CLI, db_url: str, tmp_path: Path
) -> None:
    if db_url.startswith("sqlite"):
        return  # an SQLite database's key file has always been beside it
    assert cli("init").code == 0
    key_file = tmp_path / "state" / "clinicmail" / DEFAULT_FILE
    old_place = tmp_path / DEFAULT_FILE  # where versions before the data directory kept it
    key_file.rename(old_place)
    assert_one_line_error(cli("stats", "--json"), str(old_place), f"move it to {key_file}")
    old_place.rename(key_file)
    assert cli("stats", "--json").code == 0
