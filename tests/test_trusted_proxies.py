"""X-Forwarded-For is believed only from CLINICMAIL_TRUSTED_PROXIES (none by default): otherwise
anyone could dodge the signup rate limit and write a forged address into the consent record."""

from __future__ import annotations

import warnings

import pytest
from sqlalchemy import select

from app.context import AppContext
from app.http import create_app
from app.settings import load_settings
from subscribers.tables import consent_events
from tests.support.backends import sqlite_only
from tests.support.cli import CLI

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FORGED = {"X-Forwarded-For": "198.51.100.7"}


def _signup(n: int) -> dict[str, object]:
    return {"email": f"p{n}@example.com", "consent": True}


def _consent_ips(ctx: AppContext) -> set[str | None]:
    with ctx.db.begin() as conn:
        return set(conn.execute(select(consent_events.c.ip)).scalars())


@pytest.mark.parametrize(
    ("proxies", "peer", "recorded"),
    [
        (None, "127.0.0.1", "127.0.0.1"),  # the default trusts nobody, loopback included
        (None, "203.0.113.5", "203.0.113.5"),
        ("10.0.0.0/8, 192.0.2.1", "10.1.2.3", "198.51.100.7"),  # a trusted proxy speaks
        ("10.0.0.0/8, 192.0.2.1", "192.0.2.1", "198.51.100.7"),
        ("10.0.0.0/8, 192.0.2.1", "127.0.0.1", "127.0.0.1"),  # not in the list
    ],
)
@sqlite_only("the client address is decided from the connection and headers")
def test_forwarded_for_only_from_trusted_proxies(
    cli: CLI, proxies: str | None, peer: str, recorded: str
) -> None:
    cli.env("CLINICMAIL_TRUSTED_PROXIES", proxies)
    assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    try:
        with TestClient(create_app(ctx), client=(peer, 40000)) as client:
            assert client.post("/api/subscribers", json=_signup(1), headers=FORGED).status_code
        assert _consent_ips(ctx) == {recorded}
    finally:
        ctx.close()


def test_the_rate_limit_cannot_be_dodged_with_forged_headers(cli: CLI) -> None:
    assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    try:
        with TestClient(create_app(ctx), client=("127.0.0.1", 40000)) as client:
            codes = [
                client.post(
                    "/api/subscribers",
                    json=_signup(n),
                    headers={"X-Forwarded-For": f"198.51.100.{n}"},
                ).status_code
                for n in range(11)
            ]
        assert codes == [202] * 10 + [429]
    finally:
        ctx.close()


@sqlite_only("a setting checked at start-up")
def test_a_bad_proxy_list_is_one_clear_line(cli: CLI) -> None:
    cli.env("CLINICMAIL_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")
    run = cli("init")
    assert run.code == 1
    assert "CLINICMAIL_TRUSTED_PROXIES" in run.err and "proxy.local" in run.err
    assert run.err.strip().count("\n") == 0
