"""Issue 21: the operator's levers over the send ledger, in the CLI and on the console's ops
page, each audited; and a ``tick --now`` in the future never stalls a later real-time tick."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from app.context import AppContext
from campaigns.ledger import sends
from staff import audit
from tests.support.app import app_for, context_for, person
from tests.support.approval import approve_library
from tests.support.cli import CLI, write_csv
from tests.support.console import make_console
from tests.support.provider_faults import UNAUTHORIZED, FaultySendGrid
from tests.support.sendgrid import use_sendgrid

MONDAY = "2026-11-23T10:00:00Z"
PEOPLE = [
    "ann@example.com,Ann,lower_back,Europe/London,yes,,",
    "bob@example.com,Bob,lower_back,Europe/London,yes,,",
    "cat@example.com,Cat,lower_back,Europe/London,yes,,",
]
ALL_INVALID = (
    400,
    '{"errors":['
    + ",".join(
        f'{{"field":"personalizations.{i}.to.0.email","message":"invalid"}}' for i in range(3)
    )
    + "]}",
)


@pytest.fixture
def faulty(httpserver: HTTPServer) -> FaultySendGrid:
    return FaultySendGrid(httpserver)


def setup_sendgrid(cli: CLI, httpserver: HTTPServer, tmp_path: Path) -> CLI:
    """The one place this file configures sending (SendGrid) and the list."""
    use_sendgrid(cli, httpserver)
    approve_library(cli)  # real transports send only what a clinician approved
    cli.env("CLINICMAIL_SENDGRID_TIMEOUT", "0.5")
    write_csv(tmp_path / "people.csv", PEOPLE)
    assert cli("subscribers", "import", str(tmp_path / "people.csv")).code == 0
    return cli


def audited(ctx: AppContext, action: str) -> list[Any]:
    with ctx.db.begin() as conn:
        return audit.entries(conn, action=action)


def status_of(ctx: AppContext, send: int) -> str:
    with ctx.db.begin() as conn:
        return str(conn.execute(select(sends.c.status).where(sends.c.id == send)).scalar_one())


def test_failed_sends_are_listed_and_retried_never_to_the_unsubscribed_or_erased(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.refuse = ALL_INVALID
    assert cli("tick", "--now", MONDAY, "--json").json()["failed"] == 3
    listed = cli("sends", "list", "--status", "failed", "--json")
    assert listed.code == 0
    rows = listed.json()
    assert len(rows) == 3 and all(r["status"] == "failed" for r in rows)
    assert "@" not in listed.out  # opaque ids only
    faulty.refuse = None
    with app_for(cli) as (client, ctx):
        ann = person(ctx, "ann@example.com")
        assert ann is not None
        token_url = ctx.link("unsubscribe", str(ann["public_id"]))
        path = token_url.split("mail.clinic.example", 1)[1]
        assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert cli("subscribers", "erase", "bob@example.com").code == 0
    ids = [str(r["id"]) for r in rows]
    retry = cli("sends", "retry", *ids)
    assert retry.code == 0, retry.err
    assert "retrying 1 send(s)" in retry.out and "skipped 2" in retry.out
    assert "unsubscribed" in retry.out
    tick = cli("tick", "--now", "2026-11-23T11:00:00Z", "--json").json()
    assert tick["sent"] == 1
    assert faulty.recipients == ["cat@example.com"]
    again = cli("sends", "retry", *ids)
    assert again.code == 1 and len(again.err.strip().splitlines()) == 1
    assert cli("sends", "retry").code == 1  # neither ids nor --since
    with context_for(cli) as ctx:
        assert len(audited(ctx, "sends.retry")) == 1


def test_unknown_sends_are_resolved_sent_or_resend(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.stall = threading.Event()
    try:
        assert cli("tick", "--now", MONDAY, "--json").json()["unknown"] == 3
    finally:
        faulty.stall.set()
    faulty.stall = None
    rows = cli("sends", "list", "--status", "unknown", "--json").json()
    assert len(rows) == 3
    first, second, third = (r["id"] for r in rows)
    assert cli("sends", "resolve", str(first), "--sent").code == 0
    assert cli("sends", "resolve", str(second), "--resend").code == 0
    wrong = cli("sends", "resolve", str(first), "--resend")
    assert wrong.code == 1 and "only an unknown send" in wrong.err
    assert cli("sends", "resolve", str(third)).code == 1  # neither --sent nor --resend
    faulty.requests.clear()
    assert cli("tick", "--now", "2026-11-23T10:30:00Z", "--json").json()["sent"] == 1
    with context_for(cli) as ctx:
        assert status_of(ctx, first) == "sent" and status_of(ctx, second) == "sent"
        assert status_of(ctx, third) == "unknown"  # left for the webhook or the window
        assert [e.detail for e in audited(ctx, "sends.resolve")] in (
            [{"as": "resend"}, {"as": "sent"}],
            [{"as": "sent"}, {"as": "resend"}],
        )


def test_a_future_tick_leaves_no_back_off_behind_and_reset_clears_one(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.refuse = (500, "{}")
    # Three refused requests in a row, an hour ahead of the real-time ticks below.
    for minute in ("00", "05", "10"):
        cli("tick", "--now", f"2026-11-23T11:{minute}:00Z")
    status = cli("transport", "status", "--json").json()
    assert status["backoff_until"] is not None and status["backoff_until"] > "2026-11-23T11:10"
    faulty.refuse = None
    # Real time is an hour earlier: the stored back-off was written by a clock that ran ahead.
    real = cli("tick", "--now", "2026-11-23T10:01:00Z", "--json").json()
    assert real["backed_off"] is False
    assert real["sent"] == 0  # each send's own retry time is still ahead: the lever clears it
    reset = cli("transport", "reset")
    assert reset.code == 0 and "3 send(s) waiting to retry are due now" in reset.out
    assert cli("transport", "status", "--json").json()["backoff_until"] is None
    after = cli("tick", "--now", "2026-11-23T10:02:00Z", "--json").json()
    assert after["backed_off"] is False and after["sent"] == 3
    with context_for(cli) as ctx:
        assert len(audited(ctx, "transport.reset")) == 1


def test_the_console_shows_the_pause_on_every_page_and_its_levers_are_audited(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.refuse = (401, UNAUTHORIZED)
    assert cli("tick", "--now", MONDAY).code == 1
    console = make_console(cli)
    try:
        client, csrf = console.signed_in("marketing")
        for path in ("/admin", "/admin/campaigns", "/admin/reviews"):
            page = client.get(path)
            assert page.status_code == 200
            assert 'class="banner"' in page.text and "SENDGRID_API_KEY" in page.text, path
        ops, ops_csrf = console.signed_in("ops")
        transport = ops.get("/admin/ops/transport")
        assert "SENDGRID_API_KEY" in transport.text
        # Without the CSRF token nothing changes; with it the pause is cleared and audited.
        assert ops.post("/admin/ops/transport/reset").status_code == 403
        done = ops.post("/admin/ops/transport/reset", data={"csrf_token": ops_csrf})
        assert done.status_code == 200 and "pause cleared" in done.text
        assert (
            client.post("/admin/ops/transport/reset", data={"csrf_token": csrf}).status_code == 403
        )  # ops only
        assert 'class="banner"' not in client.get("/admin").text
        entries = audited(console.ctx, "transport.reset")
        assert len(entries) == 1 and entries[0].actor == "otto@clinic.example"
    finally:
        console.ctx.close()


def test_the_console_retries_failed_sends(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.refuse = ALL_INVALID
    assert cli("tick", "--now", MONDAY, "--json").json()["failed"] == 3
    faulty.refuse = None
    console = make_console(cli)
    try:
        ops, csrf = console.signed_in("ops")
        page = ops.get("/admin/ops/transport")
        assert 'id="failed-sends"' in page.text
        ids = [str(r["id"]) for r in cli("sends", "list", "--status", "failed", "--json").json()]
        done = ops.post("/admin/ops/sends/retry", data={"csrf_token": csrf, "send": ids[:2]})
        assert done.status_code == 200 and "retrying 2 send(s)" in done.text
        assert cli("tick", "--now", "2026-11-23T11:00:00Z", "--json").json()["sent"] == 2
        entries = audited(console.ctx, "sends.retry")
        assert len(entries) == 1 and entries[0].actor == "otto@clinic.example"
    finally:
        console.ctx.close()


def test_the_console_releases_one_set_aside_email(
    cli: CLI, httpserver: HTTPServer, faulty: FaultySendGrid, tmp_path: Path
) -> None:
    setup_sendgrid(cli, httpserver, tmp_path)
    faulty.refuse = (400, '{"errors":[{"field":"subject","message":"Invalid subject"}]}')
    assert cli("tick", "--now", MONDAY).code == 0
    held = cli("transport", "status", "--json").json()["set_aside"]
    chosen = next(e for e in held if e["campaign_id"] != "_system")
    email = (chosen["campaign_id"], chosen["step_id"], chosen["variant_id"])
    faulty.refuse = None
    console = make_console(cli)
    try:
        ops, csrf = console.signed_in("ops")
        page = ops.get("/admin/ops/transport")
        assert f'aria-label="Release {"/".join(email)}"' in page.text
        form = {"csrf_token": csrf, "campaign": email[0], "step": email[1]}
        unnamed = ops.post("/admin/ops/transport/release", data=form)
        assert unnamed.status_code == 422 and "name the email" in unnamed.text
        done = ops.post("/admin/ops/transport/release", data={**form, "variant": email[2]})
        assert done.status_code == 200 and "is no longer set aside" in done.text
        again = ops.post("/admin/ops/transport/release", data={**form, "variant": email[2]})
        assert again.status_code == 422 and "is not set aside" in again.text
        left = cli("transport", "status", "--json").json()["set_aside"]
        assert left == [e for e in held if e != chosen]
        entries = audited(console.ctx, "transport.release")
        assert [(e.actor, e.target_id) for e in entries] == [
            ("otto@clinic.example", "/".join(email))
        ]
        assert cli("tick", "--now", "2026-11-23T11:00:00Z", "--json").json()["sent"] == 3
    finally:
        console.ctx.close()
