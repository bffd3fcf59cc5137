"""`clinicmail serve` at its edge, as a real process: a closed webhook is announced once, a busy
port is one clear line before anything starts, uvicorn's own lines go through our JSON logs, and
oversized bodies (chunked included) are refused while they stream in."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cli import CLI
from tests.support.http_edge import post_chunked, post_declaring
from tests.support.serve import (
    EXE,
    StderrLines,
    free_port,
    serve_env,
    spawn_web,
    wait_healthy,
)
from tests.support.signer import Signer

MB = 1024 * 1024


@contextmanager
def serving(bare_cli: CLI, tmp_path: Path, **extra: str) -> Iterator[tuple[int, list[str]]]:
    """A running `clinicmail serve --no-scheduler`; yields (port, stderr lines once stopped).
    Its database is made by `clinicmail init` in-process, with the same settings (a process
    start costs more than the init)."""
    env = {**serve_env(tmp_path), **extra}
    for name in ("CLINICMAIL_FROM_EMAIL", "CLINICMAIL_BASE_URL"):
        bare_cli.env(name, None)
    for name, value in env.items():
        if name.startswith("CLINICMAIL_") or name == "SENDGRID_API_KEY":
            bare_cli.env(name, value)
    init = bare_cli("init")
    assert init.code == 0, init.err
    port = free_port()
    proc = spawn_web(env, tmp_path, port)
    lines: list[str] = []
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield port, lines
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        lines.extend(line for line in err.splitlines() if line.strip())
    assert proc.returncode == 0, err


SENDGRID = {
    "CLINICMAIL_TRANSPORT": "sendgrid",
    "SENDGRID_API_KEY": "SG.test-key",
    "CLINICMAIL_SENDGRID_HOST": "http://127.0.0.1:9",
}
WEBHOOK_KEY = "CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY"


@dataclass
class Shared:
    """One `clinicmail serve --no-scheduler` for the tests that only send requests and read its
    log: starting a process costs more than any of them."""

    port: int
    log: StderrLines


@pytest.fixture(scope="module")
def sendgrid_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """Through SendGrid with the webhook closed (no key): every test below shares it. At the
    end it must stop cleanly, having said each start-up notice once over its whole life (the
    requests the tests made included)."""
    folder = tmp_path_factory.mktemp("sendgrid-serve")
    env = {**serve_env(folder), **SENDGRID, "XDG_STATE_HOME": str(folder / "state")}
    subprocess.run([EXE, "init"], env=env, cwd=folder, check=True, capture_output=True)
    port = free_port()
    proc = spawn_web(env, folder, port)
    log = StderrLines(proc)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield Shared(port, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        lines = log.finish()
    assert proc.returncode == 0, lines
    assert len([line for line in lines if "await a clinician's approval" in line]) == 1, lines
    assert len([line for line in lines if WEBHOOK_KEY in line]) == 1, lines


def test_an_unapproved_library_is_announced_at_start(sendgrid_server: Shared) -> None:
    """Through SendGrid the bundled library sends nothing until a clinician approves it, and
    the service says so once when it starts (and never again: the fixture's end checks)."""
    held = sendgrid_server.log.having("await a clinician's approval")
    assert len(held) == 1, sendgrid_server.log.lines
    assert "spasm-education" in held[0] and "safety email" in held[0]


def test_sendgrid_without_a_webhook_key_warns_once_and_refuses(sendgrid_server: Shared) -> None:
    body = json.dumps([{"event": "spamreport", "email": "a@example.com"}])
    r = httpx.post(f"http://127.0.0.1:{sendgrid_server.port}/webhooks/sendgrid", content=body)
    assert r.status_code == 403
    warnings = sendgrid_server.log.having(WEBHOOK_KEY)
    assert len(warnings) == 1, sendgrid_server.log.lines  # once more over its life: fixture end
    assert "warning" in warnings[0].lower() and "refused" in warnings[0]


@pytest.mark.usefixtures("restore_logging")  # the in-process init logs as JSON too
def test_no_warning_once_the_key_is_set_and_every_line_is_json_uvicorns_included(
    bare_cli: CLI, tmp_path: Path
) -> None:
    key = Signer().public_key
    with serving(
        bare_cli,
        tmp_path,
        **SENDGRID,
        CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY=key,
        CLINICMAIL_LOG_FORMAT="json",
    ) as (port, lines):
        httpx.get(f"http://127.0.0.1:{port}/nowhere")
    assert not [line for line in lines if WEBHOOK_KEY in line]
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    loggers = {r.get("logger") for r in records}
    assert "uvicorn.error" in loggers, records  # "Uvicorn running on …", startup, shutdown
    assert "clinicmail.service" in loggers


def test_forwarded_for_from_loopback_is_not_believed_by_the_server(
    sendgrid_server: Shared,
) -> None:
    # From a loopback address of its own: the other tests' requests to the shared server come
    # from 127.0.0.1 and must not count against this client's limit.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport) as client:
        codes = [
            client.post(
                f"http://127.0.0.1:{sendgrid_server.port}/api/subscribers",
                json={"email": f"p{n}@example.com", "consent": True},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            ).status_code
            for n in range(11)
        ]
    assert codes == [202] * 10 + [429]  # one client, however it dresses up


def test_a_busy_port_is_one_line_naming_port_before_anything_starts(tmp_path: Path) -> None:
    env = serve_env(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        run = subprocess.run(
            [EXE, "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 1
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "already in use" in run.stderr and "PORT=" in run.stderr
    assert "Traceback" not in run.stderr and "tick" not in run.stderr
    assert not (tmp_path / "svc.db").exists()  # nothing else happened first
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("path", "limit", "kind", "refusal"),
    [
        # The webhook is closed on the shared server (no key): a body of unknown length is
        # refused before any of it is read.
        ("/webhooks/sendgrid", 4 * MB, "application/json", 403),
        ("/api/subscribers", 64 * 1024, "application/json", 413),
        ("/signup", 64 * 1024, "application/x-www-form-urlencoded", 413),
    ],
)
def test_oversized_chunked_bodies_are_refused_early(
    sendgrid_server: Shared, path: str, limit: int, kind: str, refusal: int
) -> None:
    port = sendgrid_server.port
    status, sent = post_chunked(port, path, 64 * MB, content_type=kind)
    assert status == refusal
    assert sent < 32 * MB  # answered long before the body was done
    # a declared length over the limit is refused (by the body limit, before any route)
    # before a byte of the body is read
    assert post_declaring(port, path, limit + 1) == 413
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200  # still fine
