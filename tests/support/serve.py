"""`clinicmail serve` as a real process, and the app served by uvicorn in a thread."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.service import port_problem
from tests.support.wait import wait_until

EXE = str(Path(sys.executable).with_name("clinicmail"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Below the kernel's range of ports for outgoing connections (32768 and up here): a port from
# it is taken only by a process that asks for it by number, so one found free stays free
# between two servers of this process that use it in turn.
_STEADY_PORTS = range(20_000, 32_000)
_steady: list[int] = []  # this process's steady port, once chosen


def _bindable(port: int) -> bool:
    """Whether ``clinicmail serve`` could listen on the port now: the check it makes itself."""
    return port_problem("127.0.0.1", port) is None


def steady_port() -> int:
    """A loopback port free now, the same one on every call in this process while it stays
    free: servers started one after another (one per test module) then share one address, and
    with it the settings their databases are made with (tests/support/initcache.py)."""
    if _steady and _bindable(_steady[0]):
        return _steady[0]
    # Each test worker draws from a slice of its own, so two workers never choose the same.
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    ports = _STEADY_PORTS[worker % 8 :: 8]
    rng = random.Random()
    for _ in range(100):
        port = rng.choice(ports)
        if _bindable(port):
            _steady[:] = [port]
            return port
    return free_port()


def serve_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICMAIL_")}
    env["CLINICMAIL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'svc.db'}"
    # A window that is always open, so the scheduler's first tick sends whatever the hour.
    env["CLINICMAIL_SEND_WINDOW"] = "00:00-24:00"
    return env


def spawn_web(env: dict[str, str], cwd: Path, port: int) -> subprocess.Popen[str]:
    """`clinicmail serve --no-scheduler` on ``port``, its stderr kept for the test to read."""
    return subprocess.Popen(
        [EXE, "serve", "--no-scheduler", "--port", str(port)],
        env=env,
        cwd=cwd,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 90) -> httpx.Response:
    # One client for every poll: each new one builds a TLS context, which costs more than the
    # request.
    with httpx.Client(timeout=1) as client:

        def answer() -> httpx.Response | None:
            if proc.poll() is not None:
                raise AssertionError(
                    f"serve exited early: {proc.stderr.read() if proc.stderr else ''}"
                )
            try:
                return client.get(url)
            except httpx.TransportError:
                return None

        return wait_until(answer, timeout=timeout, interval=0.2, message="serve did not answer")


@contextmanager
def real_server(app: Any) -> Iterator[str]:
    """uvicorn on a free loopback port, in a thread, for the duration of the block."""
    # IPPROTO_TCP named, as uvicorn names it when it binds: asyncio turns Nagle off only on
    # sockets whose protocol says TCP, and with it on every answer written in two parts (head,
    # then body) waited about 40 ms for the client's delayed ACK. `clinicmail serve` never did.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30, interval=0.02, message="uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


class StderrLines:
    """A process's stderr read line by line, as it is written, by a thread: a test can wait for a
    line while the process runs (a server shared by several tests is stopped only at the end),
    and the pipe never fills."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.lines: list[str] = []
        self._stream = proc.stderr
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            if line.strip():
                self.lines.append(line.rstrip("\n"))

    def having(self, text: str, timeout: float = 30) -> list[str]:
        """The lines holding ``text``, once there is at least one."""
        return wait_until(
            lambda: [line for line in self.lines if text in line],
            timeout=timeout,
            message=f"no line holding {text!r} on stderr",
        )

    def finish(self, timeout: float = 30) -> list[str]:
        """Every line, once the process has closed its stderr (call after it has exited)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "stderr was not closed"
        self._stream.close()
        return self.lines
