"""The clinical review screen, driven over HTTP as staff use it: two edited steps shown as
tracked changes on the version that awaits review, a save from an out-of-date page refused with
the other change shown, a newsletter in the same queue, and a clinician never approving their
own edit."""

from __future__ import annotations

import html as html_lib
import re

from campaigns import versions
from tests.support.console import PASSWORD, STAFF, Console, csrf_in, users_cmd

CID = "spasm-education"
CORA = "cora@clinic.example"


def _form(page: str, name: str) -> dict[str, str]:
    def field(pattern: str) -> str:
        found = re.search(pattern, page, re.S)
        assert found, pattern
        return html_lib.unescape(found.group(1))

    return {
        "name": name,
        "subject": field(r'id="subject" name="subject" type="text" value="([^"]*)"'),
        "preheader": field(r'id="preheader" name="preheader" type="text" value="([^"]*)"'),
        "body": field(r'<textarea id="body" name="body" rows="22">(.*?)</textarea>'),
        "settings": field(r'<textarea id="settings" name="settings" rows="8">(.*?)</textarea>'),
        "revision": field(r'name="revision" value="(\d+)"'),
    }


def _ids(console: Console) -> dict[str, str]:
    with console.ctx.db.begin() as conn:
        return {v.state: v.id for v in versions.versions_of(conn, CID)}


def test_review_walk(console: Console) -> None:
    assert users_cmd(console.cli, "add", CORA, "--role", "clinician").code == 0
    marketing, m_token = console.signed_in("marketing")
    # The dashboard says the live library is not yet approved by a clinician here (the outbox
    # demo sends it, marked so).
    dashboard = marketing.get("/admin").text
    assert 'id="review-gate"' in dashboard and "spasm-education" in dashboard
    assert marketing.post(f"{'/admin/campaigns'}/{CID}/drafts", data={"csrf_token": m_token})
    draft = _ids(console)["draft"]
    base = f"/admin/campaigns/{CID}/versions/{draft}/files"

    # Marketing edits step 2; the clinician Cleo edits step 3 (so she may not approve).
    two = "02-the-first-few-days.md"
    page = marketing.get(f"{base}/{two}").text
    stale = _form(page, two)  # a second tab, opened now and saved later
    edited = {**stale, "subject": "Your first days with a stiff back, {{ first_name }}"}
    assert (
        marketing.post(f"{base}/{two}", data={**edited, "csrf_token": m_token}).status_code == 303
    )

    # The stale tab's save is refused, and shows the change it would have overwritten.
    late = {**stale, "body": stale["body"] + "\nA late sentence.\n"}
    refused = marketing.post(f"{base}/{two}", data={**late, "csrf_token": m_token})
    assert refused.status_code == 409
    assert "someone else saved" in refused.text
    assert "Your first days with a stiff back" in html_lib.unescape(refused.text)
    assert "A late sentence." in refused.text  # their own text is not lost either
    with console.ctx.db.begin() as conn:
        saved = versions.require(conn, draft)
    assert "A late sentence." not in saved.files[two]

    cleo, c_token = console.signed_in("clinician")
    three = "03-hurt-is-not-harm.md"
    form3 = _form(cleo.get(f"{base}/{three}").text, three)
    form3["body"] = form3["body"].replace("\n", "\nMoving gently is safe and helps.\n", 1)
    assert cleo.post(f"{base}/{three}", data={**form3, "csrf_token": c_token}).status_code == 303
    assert (
        marketing.post(
            f"/admin/campaigns/{CID}/versions/{draft}/submit", data={"csrf_token": m_token}
        ).status_code
        == 303
    )

    # A newsletter waits in the same queue.
    letter = {
        "slug": "winter-news",
        "subject": "Winter opening hours",
        "preheader": "When we are open.",
        "body": "Hi {{ first_name }},\n\nWe are open all winter.\n",
        "local_at": "2026-12-10T10:00",
        "csrf_token": m_token,
    }
    created = marketing.post("/admin/newsletters", data=letter)
    assert created.status_code == 303, created.text
    nid = created.headers["location"].rsplit("/", 1)[-1]
    assert (
        marketing.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": m_token}).status_code
        == 303
    )

    queue = cleo.get("/admin/reviews").text
    waiting = queue.split('id="review-queue"')[1].split("</ul>")[0]
    assert f"/admin/reviews/versions/{draft}" in waiting and "version 2" in waiting
    assert "version 1" not in waiting
    assert f"/admin/newsletters/{nid}" in waiting and "Winter opening hours" in waiting

    # The review screen: both changes as tracked changes, changed emails first.
    screen = cleo.get(f"/admin/reviews/versions/{draft}")
    assert screen.status_code == 200
    text = screen.text
    assert re.search(r'id="changed-count">2<', text), text
    changed = text.split('id="changed-h"')[1].split("<details>")[0]
    assert "<ins>days with a stiff back, there</ins>" in changed  # as sent: the name filled
    assert "<del>few days: what helps most</del>" in changed
    assert re.search(r"<ins>[^<]*Moving gently is safe and helps\.[^<]*</ins>", changed), changed
    assert changed.index("Step 2") < changed.index("Step 3")
    assert "<details>" in text  # the unchanged emails, folded away
    assert "You edited this version" in text and 'id="approve"' not in text
    # Cleo's own edit: refused, nothing changes.
    own = cleo.post(
        f"/admin/campaigns/{CID}/versions/{draft}/approve", data={"csrf_token": c_token}
    )
    assert own.status_code == 403
    assert _ids(console)["in_review"] == draft

    # Another clinician approves from the screen, with a note.
    cora = console.client()
    login = cora.post(
        "/admin/login",
        data={"email": CORA, "password": PASSWORD, "csrf_token": console.csrf_of_login(cora)},
    )
    assert login.status_code == 303
    cora_token = csrf_in(cora.get("/admin").text)
    cora_screen = cora.get(f"/admin/reviews/versions/{draft}").text
    assert 'id="approve"' in cora_screen and 'id="request-changes"' in cora_screen
    assert 'id="signoff-pack"' in cora_screen
    done = cora.post(
        f"/admin/campaigns/{CID}/versions/{draft}/approve",
        data={"csrf_token": cora_token, "note": "Both changes match our advice"},
    )
    assert done.status_code == 303
    assert _ids(console)["approved"] == draft
    assert STAFF["clinician"] != CORA
