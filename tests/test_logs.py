"""Logs: JSON or text on stderr, and an address that slips into a message is masked."""

from __future__ import annotations

import json
import logging

import pytest

from app.logs import configure
from tests.support.cli import CLI


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_with_addresses_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure("json", "INFO")
    log = logging.getLogger("clinicmail.test")
    log.info("sent batch", extra={"sent": 3})
    log.error("provider said: 550 no such user <ann.lee+x@example.co.uk>")
    log.debug("not shown at INFO")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["level"] for line in lines] == ["info", "error"]
    assert lines[0]["sent"] == 3 and lines[0]["logger"] == "clinicmail.test"
    assert "example.co.uk" not in lines[1]["event"] and "[address]" in lines[1]["event"]


@pytest.mark.usefixtures("restore_logging")
def test_text_format(capsys: pytest.CaptureFixture[str]) -> None:
    configure("text", "WARNING")
    logging.getLogger("clinicmail.test").warning("window closed for bob@example.com")
    err = capsys.readouterr().err
    assert "window closed for [address]" in err and "bob@" not in err


def test_bad_log_setting_is_one_line(sqlite_cli: CLI) -> None:
    sqlite_cli.env("CLINICMAIL_LOG_FORMAT", "xml")
    run = sqlite_cli("tick", "--dry-run")
    assert run.code == 1
    assert "CLINICMAIL_LOG_FORMAT" in run.err and len(run.err.strip().splitlines()) == 1
