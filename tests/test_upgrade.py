"""Upgrade is an explicit step: a database an earlier release left is refused by every command
but ``init`` and ``upgrade`` (one line naming ``clinicmail upgrade``), upgraded with a backup
first, and its links keep working; a database newer than this version is refused with one line
naming the version it needs. On both databases."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from storage import Database
from storage.db import SCHEMA_REVISIONS, WRITTEN_BY_ROW
from storage.schema import kv
from tests.support.app import app_for, link_in, person
from tests.support.cli import CLI, assert_one_line_error
from tests.support.outbox import messages
from tests.support.schemas import OLDER_SCHEMAS, RELEASES, database_at, load_release

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
CURRENT = "+".join(sorted(SCHEMA_REVISIONS))
# Commands that open the database: each must refuse a schema that is not this version's.
OPENING = [
    ("stats", "--json"),
    ("tick", "--json"),
    ("subscribers", "export", "ann@example.com"),
    ("users", "list"),
    ("keys", "list"),
    ("keys", "rotate"),
    ("outbox", "list"),
    ("campaigns", "list"),
    ("campaigns", "validate"),
    ("campaigns", "preview", "spasm-education", "1", "--symptoms", "lower_back"),
]


def _bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> CLI:
    return CLI(monkeypatch, tmp_path, db_url)  # no init: the test made the database


def _backups(tmp_path: Path, db: Database) -> list[Path]:
    assert db.data_dir is not None
    folder = db.data_dir / "backups"
    return sorted(folder.glob("*.tar.gz")) if folder.exists() else []


@pytest.mark.parametrize("release", RELEASES)
def test_an_earlier_release_is_refused_then_upgraded_and_its_links_still_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, release: str
) -> None:
    load_release(db_url, release)
    cli = _bare(monkeypatch, tmp_path, db_url)
    for command in OPENING:
        run = cli(*command)
        assert_one_line_error(run, "clinicmail upgrade")
    db = Database(db_url)
    try:
        before = db.schema_revisions()
        assert before == {"0004", "0006", "0007", "0008"}  # nothing migrated meanwhile
        assert _backups(tmp_path, db) == []
    finally:
        db.dispose()

    run = cli("upgrade")
    assert run.code == 0, run.err
    assert f"from 0004+0006+0007+0008 to {CURRENT}" in run.out, run.out
    db = Database(db_url)
    try:
        saved = _backups(tmp_path, db)
        assert len(saved) == 1 and str(saved[0]) in run.out
        assert stat.S_IMODE(saved[0].stat().st_mode) == 0o600
        assert db.schema_revisions() == SCHEMA_REVISIONS
    finally:
        db.dispose()
    assert cli("stats", "--json").code == 0
    again = cli("upgrade")
    assert again.code == 0 and "up to date" in again.out

    # The emails that release sent: their unsubscribe links still work after the upgrade.
    with app_for(cli) as (client, ctx):
        for email in ("ann@example.com", "bob@example.com"):
            (sent,) = messages(ctx, email)
            path = link_in(sent, "unsubscribe")
            assert client.post(path, data=ONE_CLICK).status_code == 200
            found = person(ctx, email)
            assert found is not None and found["status"] == "unsubscribed"


@pytest.mark.parametrize("schema", sorted(OLDER_SCHEMAS))
def test_init_upgrades_an_older_schema_as_upgrade_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, schema: str
) -> None:
    database_at(db_url, OLDER_SCHEMAS[schema])
    cli = _bare(monkeypatch, tmp_path, db_url)
    assert_one_line_error(cli("stats", "--json"), "clinicmail upgrade")
    run = cli("init")
    assert run.code == 0, run.err
    assert f"from {'+'.join(OLDER_SCHEMAS[schema])} to {CURRENT}" in run.out
    assert "database ready" in run.out
    again = cli("init")  # idempotent: nothing more to do
    assert again.code == 0 and "upgraded" not in again.out
    assert cli("stats", "--json").code == 0


def test_upgrade_without_a_backup_when_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    database_at(db_url, OLDER_SCHEMAS["engagement"])
    cli = _bare(monkeypatch, tmp_path, db_url)
    run = cli("upgrade", "--no-backup")
    assert run.code == 0 and "backup" not in run.out, run.out
    db = Database(db_url)
    try:
        assert _backups(tmp_path, db) == []
        assert db.schema_revisions() == SCHEMA_REVISIONS
    finally:
        db.dispose()


def test_a_newer_schema_names_the_version_it_needs(cli: CLI, db_url: str) -> None:
    assert cli("init").code == 0
    db = Database(db_url)
    try:
        with db.begin() as conn:
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('9900')"))
            conn.execute(kv.delete().where(kv.c.key == WRITTEN_BY_ROW))
            conn.execute(insert(kv).values(key=WRITTEN_BY_ROW, value="9.9.0"))
    finally:
        db.dispose()
    for command in [("init",), ("upgrade",), *OPENING]:
        run = cli(*command)
        assert_one_line_error(run, "clinicmail 9.9.0")
        assert "unexpected" not in run.err and "upgrade'" not in run.err
    # Upgraded by a version that did not record itself: the revision it needs is named.
    db = Database(db_url)
    try:
        with db.begin() as conn:
            conn.execute(kv.delete().where(kv.c.key == WRITTEN_BY_ROW))
    finally:
        db.dispose()
    assert_one_line_error(cli("stats", "--json"), "newer clinicmail", "9900")


def test_an_empty_server_database_asks_for_init(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).touch()  # an empty file, as sqlite3 leaves one
    cli = _bare(monkeypatch, tmp_path, db_url)
    assert_one_line_error(cli("stats", "--json"), "clinicmail init")
    assert cli("init").code == 0
    assert cli("stats", "--json").code == 0
