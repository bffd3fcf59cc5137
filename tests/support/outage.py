"""Databases that really stop answering, for the tests of what a request does meanwhile.

* :class:`TcpProxy` forwards a loopback port to PostgreSQL; :meth:`TcpProxy.cut` closes every
  connection through it and refuses new ones (the server went away), :meth:`TcpProxy.restore`
  listens again on the same port.
* :func:`disk_full` gives a running process a file-size limit of one byte, so every write to
  its SQLite database (and its WAL) fails with a real I/O error, as on a full disk; the limit is
  lifted when the block ends.
* :func:`serving_through_outages` runs `clinicmail serve` on either database with the outage
  at hand.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.backends import PG_URL, reset_postgres
from tests.support.serve import EXE, free_port, serve_env, spawn_web, wait_healthy


class TcpProxy:
    """A loopback port forwarded to ``target`` (host, port), one thread pair per connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            live, self._open = self._open, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for s in live:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    upstream.close()
                    return
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def disk_full(pid: int) -> Iterator[None]:
    """Every file write of process ``pid`` past its first byte fails (EFBIG: Python ignores
    SIGXFSZ) until the block ends; the hard limit is left alone so the soft one can be lifted."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


Outage = Callable[[], AbstractContextManager[None]]


@contextlib.contextmanager
def serving_through_outages(
    backend: str, tmp_path: Path, **extra_env: str
) -> Iterator[tuple[str, str, Outage, list[str]]]:
    """A running `clinicmail serve --no-scheduler` on ``backend`` ("sqlite" or "postgres");
    yields (base URL, direct database URL, outage, log): ``with outage():`` the database stops
    answering the server, and ``log`` holds the server's stderr once it has stopped (checked to
    hold no traceback)."""
    env = {**serve_env(tmp_path), **extra_env}
    proxy: TcpProxy | None = None
    if backend == "postgres":
        if not PG_URL:
            pytest.skip("set CLINICMAIL_TEST_POSTGRES_URL to run the PostgreSQL tests")
        reset_postgres(PG_URL)
        direct = make_url(PG_URL)
        proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432))
        proxied = direct.set(host="127.0.0.1", port=proxy.port)
        env["CLINICMAIL_DATABASE_URL"] = proxied.render_as_string(hide_password=False)
        db = PG_URL
    else:
        db = env["CLINICMAIL_DATABASE_URL"]
    subprocess.run([EXE, "init"], env=env, cwd=tmp_path, check=True, capture_output=True)
    port = free_port()
    proc = spawn_web(env, tmp_path, port)

    @contextlib.contextmanager
    def outage() -> Iterator[None]:
        if proxy is not None:
            proxy.cut()
            try:
                yield
            finally:
                proxy.restore()
        else:
            with disk_full(proc.pid):
                yield

    log: list[str] = []
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}", db, outage, log
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        log.append(err)
        if proxy is not None:
            proxy.close()
    assert "Traceback" not in err, err
