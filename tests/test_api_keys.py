"""``clinicmail apikeys``: a key is shown once (the last line), stored only as a hash, scoped,
revocable; every use is logged; every /api/v1 error is an RFC 9457 problem."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from api.tables import api_keys, api_requests
from tests.support.api import assert_problem, bearer, new_key
from tests.support.app import ANN, app_for, context_for
from tests.support.cli import CLI


def test_create_prints_the_key_once_and_stores_only_its_hash(cli: CLI) -> None:
    run = cli("apikeys", "create", "booking", "--scope", "subscribers:read,events:write")
    assert run.code == 0, run.err
    key = run.out.strip().splitlines()[-1]
    assert key.startswith("cm_") and " " not in key and len(key) > 40
    listed = cli("apikeys", "list")
    assert listed.code == 0
    assert "booking" in listed.out and "subscribers:read" in listed.out
    assert key not in listed.out and key[12:] not in listed.out
    with context_for(cli) as ctx, ctx.db.begin() as conn:
        row = conn.execute(select(api_keys)).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr(tuple(row))


def test_bad_scope_and_unknown_names_are_one_line_errors(cli: CLI) -> None:
    bad = cli("apikeys", "create", "x", "--scope", "subscribers:read,everything")
    assert bad.code == 1 and bad.out == ""
    assert len(bad.err.strip().splitlines()) == 1 and "everything" in bad.err
    gone = cli("apikeys", "revoke", "nobody")
    assert gone.code == 1 and len(gone.err.strip().splitlines()) == 1
    assert cli("apikeys", "create", "twice", "--scope", "stats:read").code == 0
    again = cli("apikeys", "create", "twice", "--scope", "stats:read")
    assert again.code == 1 and "twice" in again.err
    for group in (("apikeys",), ("apikeys", "create"), ("webhooks",), ("webhooks", "add")):
        assert cli(*group, "--help").code == 0


def test_no_key_a_revoked_key_and_a_missing_scope(cli: CLI) -> None:
    reader = new_key(cli, "reader", "subscribers:read")
    events = new_key(cli, "events", "events:write")
    with app_for(cli) as (client, ctx):
        lookup = {"email": ANN["email"]}
        assert_problem(client.post("/api/v1/subscribers/lookup", json=lookup), 401)
        assert_problem(
            client.post("/api/v1/subscribers/lookup", json=lookup, headers=bearer("cm_nope")), 401
        )
        assert_problem(
            client.post("/api/v1/subscribers/lookup", json=lookup, headers=bearer(events)), 403
        )
        assert_problem(
            client.post("/api/v1/subscribers/lookup", json=lookup, headers=bearer(reader)), 404
        )
        assert cli("apikeys", "revoke", "reader").code == 0
        assert_problem(
            client.post("/api/v1/subscribers/lookup", json=lookup, headers=bearer(reader)), 401
        )
        with ctx.db.begin() as conn:
            logged = conn.execute(
                select(api_requests.c.route, api_requests.c.status).order_by(api_requests.c.id)
            ).all()
    # Each use of a known key is logged with its route template and answer, never a body.
    assert [tuple(r) for r in logged] == [
        ("/api/v1/subscribers/lookup", 403),
        ("/api/v1/subscribers/lookup", 404),
    ]
    listed = cli("apikeys", "list").out
    assert "revoked" in listed


def test_every_error_under_api_v1_is_a_problem(cli: CLI) -> None:
    reader = new_key(cli, "reader", "subscribers:read")
    with app_for(cli) as (client, _ctx):
        assert_problem(client.get("/api/v1/nothing-here", headers=bearer(reader)), 404)
        assert_problem(client.delete("/api/v1/subscribers/lookup", headers=bearer(reader)), 405)
        body = assert_problem(
            client.post(
                "/api/v1/subscribers/lookup",
                json={"email": "not an address"},
                headers=bearer(reader),
            ),
            422,
        )
        assert body["errors"][0]["loc"][-1] == "email"
        assert "not an address" not in str(body)  # never the value sent back
        assert_problem(client.get("/api/v1/subscribers/" + "0" * 32, headers=bearer(reader)), 404)
        assert_problem(
            client.get("/api/v1/subscribers?cursor=garbage", headers=bearer(reader)), 422
        )
        # The signup API outside /api/v1 keeps its own 422 shape.
        old = client.post("/api/subscribers", json={"email": "x"})
        assert old.status_code == 422 and old.headers["content-type"] == "application/json"
