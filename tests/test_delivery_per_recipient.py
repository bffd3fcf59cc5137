"""The per-recipient render path (``Dispatcher.per_recipient``): each email is rendered in full for
its one recipient and posted alone, for templates that cannot use provider substitutions. The
bench forces it to measure that path; the default stays batched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pytest_httpserver import HTTPServer

from app.context import AppContext
from app.settings import load_settings
from scheduler.tick import make_dispatcher, run_tick
from tests.support.approval import approve_library
from tests.support.cli import CLI
from tests.support.delivery import import_people
from tests.support.sendgrid import FakeSendGrid, use_sendgrid

MONDAY = datetime(2026, 11, 23, 10, tzinfo=UTC)


def test_per_recipient_path_posts_one_filled_email_per_request(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> None:
    sendgrid = FakeSendGrid(httpserver)
    use_sendgrid(cli, httpserver, "SG.per")
    approve_library(cli)  # campaign email goes only once a clinician approved it
    rows = [f"{n.lower()}@example.com,{n},lower_back,Europe/London,yes,," for n in ("Ann", "Bea")]
    rows.append("cy@example.com,,lower_back,Europe/London,yes,,")
    import_people(cli, tmp_path, rows)
    ctx = AppContext.from_settings(load_settings())
    try:
        dispatcher = make_dispatcher(ctx)
        assert dispatcher.per_recipient is False  # batched unless asked
        dispatcher.per_recipient = True
        report = run_tick(ctx, MONDAY, dispatcher=dispatcher)
    finally:
        ctx.close()
    assert report.delivery.sent == 3 and report.delivery.requests == 3
    greetings = {}
    for body in sendgrid.requests:
        (person,) = body["personalizations"]
        html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
        text = next(c["value"] for c in body["content"] if c["type"] == "text/plain")
        # Everything is already in the content: no token is left for SendGrid to fill.
        assert "@@" not in html and "@@" not in text and "@@" not in body["subject"]
        assert person["headers"]["List-Unsubscribe"].startswith("<https://mail.clinic.example/")
        assert len(person["custom_args"]["send_id"]) == 32
        greetings[person["to"][0]["email"]] = html
    assert "Ann" in greetings["ann@example.com"] and "Bea" not in greetings["ann@example.com"]
    assert "Bea" in greetings["bea@example.com"]
    assert "there" in greetings["cy@example.com"]  # the graceful fallback, filled in
