"""202 means stored: a signup while the database cannot be reached is answered 503 with
`Retry-After` (JSON on the API, a plain "try again in a few minutes" page on the form), and the
client's retry once the database is back stores it. Driven against a real `clinicmail serve`
process whose database really stops answering: PostgreSQL behind a proxy that is cut, SQLite
on a "disk" that refuses every write."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from campaigns.ledger import sends
from subscribers.tables import subscribers
from tests.support.backends import BACKENDS, PG_URL, reset_postgres
from tests.support.outage import TcpProxy, disk_full
from tests.support.serve import EXE, free_port, serve_env, spawn_web, wait_healthy

SIGNUP = {"email": "", "first_name": "Ann", "symptoms": ["neck"], "consent": True}


@contextmanager
def _server(
    backend: str, tmp_path: Path
) -> Iterator[tuple[str, str, Callable[[], AbstractContextManager[None]]]]:
    """(base URL, direct database URL, outage()) for a running `serve --no-scheduler`."""
    env = serve_env(tmp_path)
    proxy: TcpProxy | None = None
    if backend == "postgres":
        if not PG_URL:
            pytest.skip("set CLINICMAIL_TEST_POSTGRES_URL to run the PostgreSQL tests")
        reset_postgres(PG_URL)
        direct = make_url(PG_URL)
        proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432))
        env["CLINICMAIL_DATABASE_URL"] = direct.set(
            host="127.0.0.1", port=proxy.port
        ).render_as_string(hide_password=False)
        db = PG_URL
    else:
        db = env["CLINICMAIL_DATABASE_URL"]
    subprocess.run([EXE, "init"], env=env, cwd=tmp_path, check=True, capture_output=True)
    port = free_port()
    proc = spawn_web(env, tmp_path, port)

    @contextmanager
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

    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}", db, outage
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        if proxy is not None:
            proxy.close()
    assert "Traceback" not in err, err
    # One line per refused signup, naming no one.
    assert "the database is unreachable" in err
    assert "@example.com" not in err and "Ann" not in err


def _stored(db: str) -> dict[str, list[str]]:
    """Each stored address and the system emails queued for it."""
    engine = create_engine(db)
    try:
        with engine.begin() as conn:
            people = conn.execute(select(subscribers.c.id, subscribers.c.email_key)).all()
            queued = conn.execute(select(sends.c.subscriber_id, sends.c.step_id)).all()
    finally:
        engine.dispose()
    return {
        p.email_key: sorted(q.step_id for q in queued if q.subscriber_id == p.id) for p in people
    }


@pytest.mark.real_clock
@pytest.mark.parametrize("backend", BACKENDS)
def test_signup_while_the_database_is_unreachable_is_503_and_the_retry_is_stored(
    backend: str, tmp_path: Path
) -> None:
    with _server(backend, tmp_path) as (base, db, outage), httpx.Client(base_url=base) as web:
        before = web.post("/api/subscribers", json={**SIGNUP, "email": "before@example.com"})
        assert before.status_code == 202, before.text
        with outage():
            api = web.post("/api/subscribers", json={**SIGNUP, "email": "during@example.com"})
            assert api.status_code == 503, api.text
            assert int(api.headers["retry-after"]) > 0
            assert api.headers["content-type"].startswith("application/json")
            assert "try again" in api.json()["detail"]
            form = web.post(
                "/signup",
                data={"email": "form@example.com", "first_name": "Bo", "consent": "yes"},
            )
            assert form.status_code == 503, form.text
            assert int(form.headers["retry-after"]) > 0
            assert form.headers["content-type"].startswith("text/html")
            assert "please try again in a few minutes" in form.text.lower()
            assert "Check your inbox" not in form.text
        # The database is back: the clients try again, and nothing was lost.
        again = web.post("/api/subscribers", json={**SIGNUP, "email": "during@example.com"})
        assert again.status_code == 202, again.text
        form = web.post(
            "/signup", data={"email": "form@example.com", "first_name": "Bo", "consent": "yes"}
        )
        assert form.status_code == 200 and "Check your inbox" in form.text
    assert _stored(db) == {
        "before@example.com": ["confirm"],
        "during@example.com": ["confirm"],
        "form@example.com": ["confirm"],
    }
