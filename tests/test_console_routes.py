"""Console routes over HTTP, one concern each: a page group's router runs alone on a bare app
with its dependencies handed in; input problems are 422 pages that keep what was typed (403 is
for roles and CSRF only); the outbox viewer shows an email without its tracking, and a staff
browser's tracking hits are never recorded while anyone else's are."""

from __future__ import annotations

import re
from email import message_from_bytes
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.http import console_ports
from console import people
from console.auth import signed_in
from console.deps import ports
from engagement.tracking import untracked
from staff import accounts, sessions
from storage import utcnow
from subscribers.tables import subscribers
from tests.support import tracking
from tests.support.console import STAFF, Console
from tests.support.engagement import import_and_send
from transports.outbox import stored_message

ROWS = [
    "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
    "bob@example.com,Bob,neck;desk_posture,Europe/London,yes,,",
]


def test_a_page_group_runs_alone_with_its_dependencies_handed_in(
    console: Console, tmp_path: Path
) -> None:
    import_and_send(console.cli, tmp_path, ROWS)
    with console.ctx.db.begin() as conn:
        user = accounts.find(conn, STAFF["marketing"])
        assert user is not None
        token = sessions.start(conn, user, utcnow())
        session = sessions.resolve(conn, token, utcnow())
        public_id = conn.execute(
            select(subscribers.c.public_id).where(subscribers.c.email_key == "ann@example.com")
        ).scalar_one()
    bare = FastAPI()
    bare.include_router(people.router)  # nothing else of the console
    bare.dependency_overrides[ports] = lambda: console_ports(console.ctx)
    bare.dependency_overrides[signed_in] = lambda: session
    client = TestClient(bare)
    found = client.get("/admin/subscribers")
    assert found.status_code == 200 and "People" in found.text
    record = client.get(f"/admin/subscribers/{public_id}")
    assert record.status_code == 200 and "ann@example.com" in record.text
    refused = client.post(f"/admin/subscribers/{public_id}/pause", data={"weeks": "3"})
    assert refused.status_code == 422 and "Nothing was changed" in refused.text


def test_input_problems_are_422_pages_that_keep_what_was_typed(console: Console) -> None:
    client, token = console.signed_in("marketing")
    cid = "spasm-education"
    client.post(f"/admin/campaigns/{cid}/drafts", data={"csrf_token": token})
    page = client.get(f"/admin/campaigns/{cid}").text
    draft = re.search(r"/versions/([0-9a-f]+)/steps", page)
    assert draft
    base = f"/admin/campaigns/{cid}/versions/{draft.group(1)}"
    # A variant with no symptom chosen: the campaign page again, the name as typed.
    variant = client.post(
        f"{base}/variants",
        data={"csrf_token": token, "step": "02-the-first-few-days.md", "variant": "desk-kept"},
    )
    assert variant.status_code == 422
    assert "Choose at least one symptom" in variant.text and 'value="desk-kept"' in variant.text
    # Retiring a step the draft does not have: refused as input, said on the page.
    missing = client.post(f"{base}/files/99-nothing.md/retire", data={"csrf_token": token})
    assert missing.status_code == 422 and "Not retired" in missing.text
    # A role below the one needed is still a 403: marketing retiring the live version.
    live = re.search(r"/versions/([0-9a-f]+)/retire\"", client.get(f"/admin/campaigns/{cid}").text)
    with console.ctx.db.begin() as conn:
        from campaigns import versions

        active = versions.live(conn, cid)
    assert active is not None
    assert live is None or live.group(1) != active.id  # no Retire button on it for marketing
    refused = client.post(
        f"/admin/campaigns/{cid}/versions/{active.id}/retire",
        data={"csrf_token": token, "confirm": "yes"},
    )
    assert refused.status_code == 403


def _html_of(data: bytes, header: str = "") -> str:
    """The HTML part of a stored message (or, with ``header``, that header)."""
    if header:
        return str(message_from_bytes(data)[header])
    for part in message_from_bytes(data).walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode("utf-8")
    raise AssertionError("no HTML part")


def _engagement(console: Console) -> tuple[int, int]:
    totals = console.cli("stats", "--json").json()["totals"]
    return int(totals["unique_opens"]), int(totals["unique_clicks"])


def test_the_outbox_viewer_shows_mail_without_tracking_and_staff_hits_count_nothing(
    console: Console, tmp_path: Path
) -> None:
    tracking.set_up(console.cli, tmp_path)  # step 1 has links to NHS and the clinic
    client, _ = console.signed_in("marketing")
    listing = client.get("/admin/outbox").text
    ids = re.findall(r'href="/admin/outbox/(\d+)"', listing)
    assert ids
    message_id = next(
        int(i)
        for i in ids
        if "care note" in _html_of(stored_message(console.ctx.db, int(i)) or b"", "subject")
    )
    raw = _html_of(stored_message(console.ctx.db, message_id) or b"")
    base = console.ctx.settings.base_url
    pixel = re.search(rf"{re.escape(base)}/o/[A-Za-z0-9]+/[A-Za-z0-9._-]+\.gif", raw)
    link = re.search(rf"{re.escape(base)}/r/[A-Za-z0-9-]+/[A-Za-z0-9._-]+", raw)
    assert pixel and link, "the stored email is tracked"

    shown = client.get(f"/admin/outbox/{message_id}").text
    frame = re.search(r'<iframe[^>]*srcdoc="([^"]*)"', shown)
    assert frame
    assert "/o/" not in frame.group(1) and f"{base}/r/" not in frame.group(1)
    assert "www.nhs.uk/conditions/back-pain/" in frame.group(1)  # links lead where they point
    plain = shown.split('<pre class="text">', 1)[1].split("</pre>", 1)[0]
    assert f"{base}/r/" not in plain and "www.nhs.uk" in plain

    opens, clicks = _engagement(console)
    path = pixel.group(0).removeprefix(base)
    click = link.group(0).removeprefix(base)
    browser = {
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    }
    # The staff browser (its session cookie) fetching the pixel or a link: not recorded.
    assert client.get(path, headers=browser).status_code == 200
    assert client.get(click, headers=browser).status_code == 302
    assert _engagement(console) == (opens, clicks)
    # Anyone else: recorded.
    reader = console.client()
    assert reader.get(path, headers=browser).status_code == 200
    assert reader.get(click, headers=browser).status_code == 302
    assert _engagement(console) == (opens + 1, clicks + 1)


def test_untracked_takes_out_our_pixel_and_redirects_only(console: Console) -> None:
    base = "https://mail.clinic.example"
    html = (
        f'<p><a href="{base}/r/abc123-7/sig.x">book</a> '
        '<a href="https://elsewhere.example/r/abc-1/s">theirs</a>'
        f'<img src="{base}/o/abc123/sig.gif" width="1" alt="">'
        '<img src="https://elsewhere.example/logo.gif" alt="logo"></p>'
    )
    with console.ctx.db.begin() as conn:
        out = untracked(conn, html, base, is_html=True)
    assert f"{base}/o/" not in out and f"{base}/r/" not in out
    assert 'href="#"' in out  # a link id we do not know leads nowhere
    assert "https://elsewhere.example/r/abc-1/s" in out  # not ours: untouched
    assert "https://elsewhere.example/logo.gif" in out
