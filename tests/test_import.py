"""`clinicmail subscribers import`: each bad row rejected with its reason, the rest imported,
idempotent re-imports, and a bad file as one clear error with nothing written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.support.cli import CLI, write_csv

GOOD = "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,2026-11-01T09:00:00Z,clinic"


def test_each_bad_row_is_rejected_with_its_reason(cli: CLI, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        [
            GOOD,
            "not-an-email,X,,,yes,,",
            "nocon@example.com,No,lower_back,,no,,",
            "blank@example.com,No,lower_back,,,,",
            "code@example.com,C,lumbago;neck,,yes,,",
            "zone@example.com,Z,neck,Mars/Olympus,yes,,",
            "when@example.com,W,neck,,yes,last tuesday,",
            "bea@example.com,Bea,neck;desk_posture,America/New_York,TRUE,,",
        ],
        bom=True,
    )
    run = cli(
        "subscribers", "import", str(path), "--report", str(tmp_path / "rejects.csv"), "--json"
    )
    assert run.code == 0, run.err
    assert run.json() == {"imported": 2, "updated": 0, "unchanged": 0, "rejected": 6}
    with (tmp_path / "rejects.csv").open(encoding="utf-8") as fh:
        rejects = {r["email"]: r["reason"] for r in csv.DictReader(fh)}
    assert rejects["not-an-email"].startswith("invalid email")
    assert rejects["nocon@example.com"].startswith("no consent")
    assert rejects["blank@example.com"].startswith("no consent")
    assert rejects["code@example.com"] == "unknown symptom code: lumbago"
    assert rejects["zone@example.com"] == "unknown time zone: Mars/Olympus"
    assert rejects["when@example.com"].startswith("invalid consent_at")


def test_reimport_changes_nothing_and_a_changed_row_updates(cli: CLI, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [GOOD, "bob@example.com,Bob,neck,,yes,,"])
    assert cli("subscribers", "import", str(path), "--json").json()["imported"] == 2
    assert cli("subscribers", "import", str(path), "--json").json() == {
        "imported": 0,
        "updated": 0,
        "unchanged": 2,
        "rejected": 0,
    }
    # Emails compare case-insensitively; a row for an existing subscriber updates them.
    changed = write_csv(
        tmp_path / "c.csv", ["ANN@EXAMPLE.COM,Annie,lower_back,Europe/London,yes,,"]
    )
    assert cli("subscribers", "import", str(changed), "--json").json() == {
        "imported": 0,
        "updated": 1,
        "unchanged": 0,
        "rejected": 0,
    }
    exported = cli("subscribers", "export", "ann@example.com")
    assert exported.code == 0
    assert "Annie" in exported.out
    assert "sciatica" not in exported.out


def test_duplicate_rows_in_one_file_import_once(cli: CLI, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [GOOD, GOOD.replace("ann@", "Ann@")])
    assert cli("subscribers", "import", str(path), "--json").json() == {
        "imported": 1,
        "updated": 0,
        "unchanged": 1,
        "rejected": 0,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV text file"),
        ("email,first_name\ncaf\xe9@example.com,Zo\xeb\n".encode("latin-1"), "not UTF-8"),
        (b"name,phone\nAnn,123\n", "no 'email' column"),
        (b"", "empty"),
    ],
)
def test_a_bad_file_is_one_clear_error_and_imports_nothing(
    cli: CLI, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    run = cli("subscribers", "import", str(path), "--json")
    assert run.code == 1
    assert len(run.err.strip().splitlines()) == 1
    assert message in run.err
    assert "Traceback" not in run.err
    assert cli("subscribers", "export", "caf\xe9@example.com").code == 1


def test_missing_file(sqlite_cli: CLI, tmp_path: Path) -> None:
    run = sqlite_cli("subscribers", "import", str(tmp_path / "nope.csv"))
    assert run.code == 1
    assert "no such file" in run.err
