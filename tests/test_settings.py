"""A bad or missing setting stops start-up with one line naming it, exit 1, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import CLI

BAD = [
    ("CLINICMAIL_TRANSPORT", "carrier-pigeon", "CLINICMAIL_TRANSPORT"),
    ("CLINICMAIL_TIMEZONE", "Mars/Olympus", "CLINICMAIL_TIMEZONE"),
    ("CLINICMAIL_SEND_WINDOW", "9-5", "CLINICMAIL_SEND_WINDOW"),
    ("CLINICMAIL_SEND_WINDOW", "20:00-08:00", "CLINICMAIL_SEND_WINDOW"),
    ("CLINICMAIL_BASE_URL", "not a url", "CLINICMAIL_BASE_URL"),
    ("CLINICMAIL_FROM_EMAIL", "nobody", "CLINICMAIL_FROM_EMAIL"),
    ("CLINICMAIL_SMTP_URL", "http://x", "CLINICMAIL_SMTP_URL"),
    ("CLINICMAIL_DATABASE_URL", "clinicmail.db", "CLINICMAIL_DATABASE_URL"),
    (
        "CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY",
        "bm90IGEga2V5",
        "CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY",
    ),
    ("CLINICMAIL_SENDGRID_TIMEOUT", "-1", "CLINICMAIL_SENDGRID_TIMEOUT"),
    ("CLINICMAIL_TICK_SECONDS", "0", "CLINICMAIL_TICK_SECONDS"),
]


@pytest.mark.parametrize(("name", "value", "named"), BAD)
def test_bad_setting_is_one_line_naming_it(
    sqlite_cli: CLI, name: str, value: str, named: str
) -> None:
    sqlite_cli.env(name, value)
    run = sqlite_cli("tick", "--json")
    assert run.code == 1
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert named in lines[0]
    assert "Traceback" not in run.err
    assert run.out == ""


def test_sendgrid_transport_needs_a_key(sqlite_cli: CLI) -> None:
    sqlite_cli.env("CLINICMAIL_TRANSPORT", "sendgrid")
    run = sqlite_cli("init")
    assert run.code == 1
    assert (
        run.err.strip()
        == "clinicmail: SENDGRID_API_KEY is required when CLINICMAIL_TRANSPORT=sendgrid"
    )


def test_secret_values_are_never_echoed(sqlite_cli: CLI) -> None:
    sqlite_cli.env("CLINICMAIL_TRANSPORT", "smtp")
    sqlite_cli.env("CLINICMAIL_SMTP_URL", "ftp://user:hunter2@host")
    run = sqlite_cli("init")
    assert run.code == 1
    assert "hunter2" not in run.err


def test_dotenv_file_is_read(sqlite_cli: CLI, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CLINICMAIL_SEND_WINDOW=bogus\n")
    run = sqlite_cli("tick")
    assert run.code == 1 and "CLINICMAIL_SEND_WINDOW" in run.err


def test_console_script_has_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICMAIL_")}
    env["CLINICMAIL_TRANSPORT"] = "nope"
    exe = Path(sys.executable).with_name("clinicmail")
    proc = subprocess.run(
        [str(exe), "tick"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "CLINICMAIL_TRANSPORT" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_command_has_help(sqlite_cli: CLI) -> None:
    for args in (
        [],
        ["init"],
        ["tick"],
        ["serve"],
        ["subscribers", "import"],
        ["campaigns", "validate"],
        ["campaigns", "preview"],
        ["outbox", "list"],
    ):
        run = sqlite_cli(*args, "--help")
        assert run.code == 0, (args, run.err)
        assert "Usage:" in run.out
