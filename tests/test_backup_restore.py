"""Backup and restore, and key rotation: one archive with the database and the key file; the
restore drill (back up, destroy, restore) leaves a working installation whose links signed
before the backup still work and whose send ledger still holds; a rotated key signs new links
while the older ones keep verifying. On both databases."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

from storage import Database
from storage.db import SCHEMA_REVISIONS
from subscribers.tokens import Tokens
from tests.support.app import app_for, context_for, ledger, link_in, person
from tests.support.backends import reset_postgres
from tests.support.cli import CLI, assert_one_line_error
from tests.support.delivery import import_people, londoners
from tests.support.outbox import messages
from tests.support.times import future_noon, iso

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _sent(cli: CLI, tmp_path: Path) -> str:
    """Two people, each sent the first email; the time of that tick."""
    import_people(cli, tmp_path, londoners("a", 2))
    at = iso(future_noon())
    run = cli("tick", "--now", at, "--json")
    assert run.code == 0 and run.json()["sent"] == 2, run.out
    return at


def _destroy(db_url: str) -> Path:
    """The machine is lost: the database and the key file are gone. Returns the key file."""
    db = Database(db_url)
    key_file = db.key_file
    assert key_file is not None
    if db.file is not None:
        db.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db.file}{suffix}").unlink(missing_ok=True)
    else:
        db.dispose()
        reset_postgres(db_url)
    key_file.unlink()
    return key_file


def test_restore_drill_old_links_and_the_ledger_still_work(
    cli: CLI, db_url: str, tmp_path: Path
) -> None:
    at = _sent(cli, tmp_path)
    with context_for(cli) as ctx:
        old_link = link_in(messages(ctx, "a0@example.com")[0], "unsubscribe")
        sent_before = ledger(ctx)
    assert cli("keys", "rotate").code == 0  # a key rotated before the backup: both must survive
    archive = tmp_path / "backups" / "nightly.tar.gz"
    run = cli("backup", str(archive))
    assert run.code == 0, run.err
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        manifest = json.load(manifest_file)
    assert names == {"manifest.json", "clinicmail.keys"} | set(manifest["files"])
    assert set(manifest["schema_revisions"]) == SCHEMA_REVISIONS
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())

    key_file = _destroy(db_url)
    assert cli("stats", "--json").code == 1  # nothing to work with

    run = cli("restore", str(archive))
    assert run.code == 0, run.err
    assert "restored" in run.out
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The ledger holds: the same tick sends nothing again, a week later the next step goes.
    again = cli("tick", "--now", at, "--json")
    assert again.code == 0 and again.json()["sent"] == 0, again.out
    with app_for(cli) as (client, ctx):
        assert ledger(ctx) == sent_before
        # A link signed before the backup (with the key rotated out since) still works.
        assert client.post(old_link, data=ONE_CLICK).status_code == 200
        found = person(ctx, "a0@example.com")
        assert found is not None and found["status"] == "unsubscribed"
    later = iso(future_noon(days=10))
    week = cli("tick", "--now", later, "--json")
    assert week.code == 0 and week.json()["sent"] == 1, week.out  # a1 only: a0 left


def test_restore_refuses_a_database_with_data_and_a_damaged_archive(
    cli: CLI, tmp_path: Path
) -> None:
    _sent(cli, tmp_path)
    archive = tmp_path / "b.tar.gz"
    assert cli("backup", str(archive)).code == 0
    run = cli("restore", str(archive))
    assert_one_line_error(run, "holds data", "--force")
    # --force replaces it
    assert cli("subscribers", "erase", "a1@example.com").code == 0
    forced = cli("restore", str(archive), "--force")
    assert forced.code == 0, forced.err
    export = cli("subscribers", "export", "a1@example.com")
    assert export.code == 0 and "a1@example.com" in export.out
    # a member changed after the backup: refused, nothing touched
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as dst:
        for info in src.getmembers():
            data = src.extractfile(info)
            assert data is not None
            body = data.read()
            if info.name == "clinicmail.keys":
                body = body.replace(b'"suppression": "', b'"suppression": "00')
                info.size = len(body)
            dst.addfile(info, io.BytesIO(body))
    assert_one_line_error(cli("restore", str(damaged), "--force"), "checksum")
    assert_one_line_error(cli("restore", str(tmp_path / "missing.tar.gz")), "no backup")
    assert cli("stats", "--json").code == 0


def test_rotated_keys_sign_new_links_and_old_links_keep_working(
    cli: CLI, db_url: str, tmp_path: Path
) -> None:
    _sent(cli, tmp_path)
    with context_for(cli) as ctx:
        old_keys = list(ctx.signing_keys)
        old_link = link_in(messages(ctx, "a0@example.com")[0], "unsubscribe")
    listed = cli("keys", "list", "--json")
    assert listed.code == 0 and len(listed.json()["keys"]) == 1
    run = cli("keys", "rotate")
    assert run.code == 0, run.err
    listed = cli("keys", "list", "--json").json()["keys"]
    assert len(listed) == 2 and listed[-1]["signs_new_links"] and not listed[0]["signs_new_links"]
    assert listed[0]["age_days"] == 0 and listed[-1]["id"] in run.out
    text = cli("keys", "list")
    assert text.code == 0 and all(k not in text.out + run.out for k in old_keys)
    with app_for(cli) as (client, ctx):
        assert ctx.signing_keys[:-1] == old_keys and ctx.signing_keys[-1] not in old_keys
        # new links are signed with the new key only
        fresh = Tokens(ctx.signing_keys).make("unsubscribe", "pub")
        assert Tokens([ctx.signing_keys[-1]]).read("unsubscribe", fresh) == "pub"
        assert client.post(old_link, data=ONE_CLICK).status_code == 200
        found = person(ctx, "a0@example.com")
        assert found is not None and found["status"] == "unsubscribed"
    # With CLINICMAIL_SECRET_KEY set the key file does not sign: rotation says what to do.
    cli.env("CLINICMAIL_SECRET_KEY", "k" * 40)
    assert_one_line_error(cli("keys", "rotate"), "CLINICMAIL_SECRET_KEY")


def test_backup_of_a_missing_database_says_so(bare_cli: CLI, tmp_path: Path) -> None:
    assert_one_line_error(bare_cli("backup", str(tmp_path / "x.tar.gz")), "no database")
    assert not (tmp_path / "x.tar.gz").exists()
