"""Start-up says what is wrong, one line each: a campaigns folder that is missing or empty, a
DNS resolver that is not an address and port, a base URL on another port than the one served;
the log lines follow CLINICMAIL_LOG_LEVEL (uvicorn's too) and carry no terminal colour codes
when not written to a terminal, and the JSON format is clean for a log shipper."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import pytest

from app.logs import configure
from app.service import base_url_problem
from tests.support.cli import CLI, assert_one_line_error
from tests.support.serve import free_port, serve_env, spawn_web, wait_healthy


def test_a_missing_campaigns_folder_fails_at_start(bare_cli: CLI, tmp_path: Path) -> None:
    bare_cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(tmp_path / "campains"))
    assert_one_line_error(bare_cli("init"), "CLINICMAIL_CAMPAIGNS_DIR", "campains")
    assert not (tmp_path / "clinicmail.db").exists()


def test_an_empty_campaigns_folder_is_said_at_start(bare_cli: CLI, tmp_path: Path) -> None:
    empty = tmp_path / "campaigns"
    empty.mkdir()
    bare_cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(empty))
    run = bare_cli("init")
    assert run.code == 0, run.err
    assert run.err.count("\n") == 1 and "no campaigns" in run.err and str(empty) in run.err
    tick = bare_cli("tick", "--json")
    assert tick.code == 0 and "no campaigns" in tick.err


@pytest.mark.parametrize("resolver", ["nohost", "dns.example:53", "127.0.0.1:99999", ":53"])
def test_a_resolver_that_is_not_an_address_and_port_fails_at_start(
    bare_cli: CLI, resolver: str
) -> None:
    bare_cli.env("CLINICMAIL_DNS_RESOLVER", resolver)
    assert_one_line_error(bare_cli("init"), "CLINICMAIL_DNS_RESOLVER")
    assert "unexpected" not in bare_cli("doctor").err


def test_base_url_problem() -> None:
    assert base_url_problem("http://127.0.0.1:8000", "127.0.0.1", 8000) is None
    assert base_url_problem("https://mail.clinic.example", "127.0.0.1", 8300) is None
    said = base_url_problem("http://127.0.0.1:8000", "127.0.0.1", 8300)
    assert said is not None and "8300" in said and "CLINICMAIL_BASE_URL" in said
    assert base_url_problem("http://localhost", "0.0.0.0", 8000) is not None  # noqa: S104
    assert base_url_problem("http://localhost", "0.0.0.0", 80) is None  # noqa: S104


def _serve_and_stop(bare_cli: CLI, tmp_path: Path, **extra: str) -> str:
    """``clinicmail serve --no-scheduler`` (with ``extra`` settings) on a free port until
    healthy, then SIGTERM; its stderr (a pipe, not a terminal). The database is made by
    ``clinicmail init`` in-process first (a process start costs more than the init)."""
    env = {**serve_env(tmp_path), **extra}
    bare_cli.env("CLINICMAIL_DATABASE_URL", env["CLINICMAIL_DATABASE_URL"])
    for name in ("CLINICMAIL_FROM_EMAIL", "CLINICMAIL_BASE_URL"):
        bare_cli.env(name, None)  # the settings the server gets: serve_env's
    init = bare_cli("init")
    assert init.code == 0, init.err
    port = free_port()
    web = spawn_web(env, tmp_path, port)
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}/healthz", web).status_code == 200
    finally:
        web.send_signal(signal.SIGTERM)
        _, err = web.communicate(timeout=20)
    assert web.returncode == 0, err
    return err


def test_serve_says_when_links_would_point_at_another_port_and_logs_plainly(
    bare_cli: CLI, tmp_path: Path
) -> None:
    # the default base URL names port 8000; a free port is served
    err = _serve_and_stop(bare_cli, tmp_path)
    warnings = [line for line in err.splitlines() if "CLINICMAIL_BASE_URL" in line]
    assert len(warnings) == 1, err
    assert "\x1b" not in err  # no colour codes into a pipe
    assert "Uvicorn running" in err or "Application startup complete" in err  # INFO by default


def test_log_level_governs_uvicorn_and_json_lines_are_clean(bare_cli: CLI, tmp_path: Path) -> None:
    err = _serve_and_stop(
        bare_cli, tmp_path, CLINICMAIL_LOG_LEVEL="WARNING", CLINICMAIL_LOG_FORMAT="json"
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, err
    for line in lines:
        record = json.loads(line)
        assert "color_message" not in record and "\x1b" not in line
        assert record["level"] in ("warning", "error", "critical"), line
    assert "Uvicorn running" not in err and "startup complete" not in err


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_uvicorns_coloured_copy_of_a_message_is_dropped(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    configure(fmt, "INFO")
    # as uvicorn logs its start line: the message, and a copy with terminal escapes
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s",
        "http://127.0.0.1:8000",
        extra={"color_message": "Uvicorn running on \x1b[1m%s\x1b[0m"},
    )
    configure(fmt, "WARNING")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    err = capsys.readouterr().err
    assert "Uvicorn running on http://127.0.0.1:8000" in err
    assert "\x1b" not in err and "color_message" not in err
    assert "startup complete" not in err
