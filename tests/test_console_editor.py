"""The editor and the clinical review over HTTP: a draft edited with a live preview, problems
shown inline, submitted, approved only by a clinician who did not edit it, activated (the
running app sends the new version), and a test send that never reaches the ledger."""

from __future__ import annotations

import re
from email import message_from_bytes

from sqlalchemy import func, select

from campaigns import versions
from campaigns.ledger import sends
from staff.tables import audit_log
from tests.support.console import STAFF, Console
from transports.tables import outbox

CID = "spasm-education"
STEP = "02-the-first-few-days.md"


def _editor_form(html: str) -> dict[str, str]:
    subject = re.search(r'id="subject" name="subject" type="text" value="([^"]*)"', html)
    preheader = re.search(r'id="preheader" name="preheader" type="text" value="([^"]*)"', html)
    body = re.search(r'<textarea id="body" name="body" rows="22">(.*?)</textarea>', html, re.S)
    settings = re.search(
        r'<textarea id="settings" name="settings" rows="8">(.*?)</textarea>', html, re.S
    )
    assert subject and preheader and body and settings
    import html as html_lib

    return {
        "name": STEP,
        "subject": html_lib.unescape(subject.group(1)),
        "preheader": html_lib.unescape(preheader.group(1)),
        "body": html_lib.unescape(body.group(1)),
        "settings": html_lib.unescape(settings.group(1)),
    }


def _version_ids(console: Console) -> dict[str, str]:
    with console.ctx.db.begin() as conn:
        return {v.state: v.id for v in versions.versions_of(conn, CID)}


def test_edit_preview_review_activate(console: Console) -> None:
    marketing, m_token = console.signed_in("marketing")
    listing = marketing.get("/admin/campaigns")
    assert listing.status_code == 200
    assert "Not yet reviewed by a clinician at your clinic" in listing.text
    page = marketing.get(f"/admin/campaigns/{CID}")
    assert "Not yet reviewed by a clinician at your clinic" in page.text
    assert "days after" in page.text  # delays in plain words
    assert (
        marketing.post(f"/admin/campaigns/{CID}/drafts", data={"csrf_token": m_token}).status_code
        == 303
    )
    draft_id = _version_ids(console)["draft"]

    editor = marketing.get(f"/admin/campaigns/{CID}/versions/{draft_id}/files/{STEP}")
    assert editor.status_code == 200
    assert 'hx-post="/admin/campaigns/' in editor.text and "htmx.min.js" in editor.text
    form = _editor_form(editor.text)

    # Live preview of unsaved text, as a persona with a first name.
    changed = {
        **form,
        "subject": "Your first days, {{ first_name }}",
        "persona_first_name": "Priya",
    }
    shown = marketing.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/preview",
        data=changed,
        headers={"X-CSRF-Token": m_token, "HX-Request": "true"},
    )
    assert shown.status_code == 200
    assert "Your first days, Priya" in shown.text
    assert 'data-finding="none"' in shown.text
    # A broken template is reported inline, in words, with its line.
    broken = {**form, "body": form["body"] + "\n{{ first_name | attr('x') }}\n{% if %}\n"}
    bad = marketing.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/preview",
        data=broken,
        headers={"X-CSRF-Token": m_token},
    )
    assert 'data-finding="error"' in bad.text and "line" in bad.text
    # The content gate speaks as you type: a promise a clinic should not make.
    promise = {**form, "body": form["body"] + "\nThis exercise will cure it for good.\n"}
    gated = marketing.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/preview",
        data=promise,
        headers={"X-CSRF-Token": m_token},
    )
    assert 'data-finding="error"' in gated.text and "cure" in gated.text.lower()

    saved = marketing.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/files/{STEP}",
        data={**changed, "csrf_token": m_token},
    )
    assert saved.status_code == 303
    assert (
        marketing.post(
            f"/admin/campaigns/{CID}/versions/{draft_id}/submit", data={"csrf_token": m_token}
        ).status_code
        == 303
    )
    assert _version_ids(console)["in_review"] == draft_id

    # Marketing sees no approve button, and its POST is refused.
    page = marketing.get(f"/admin/campaigns/{CID}")
    assert "Approve" not in page.text and "Waiting for a clinician" in page.text
    refused = marketing.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/approve", data={"csrf_token": m_token}
    )
    assert refused.status_code == 403
    assert _version_ids(console)["in_review"] == draft_id

    clinician, c_token = console.signed_in("clinician")
    queue = clinician.get("/admin/reviews").text
    waiting = queue.split('id="waiting-title"')[1].split("</section>")[0]
    # The version awaiting review, linked to its review screen; not the live version 1.
    assert "version 2" in waiting and f"/admin/reviews/versions/{draft_id}" in waiting
    assert "version 1" not in waiting
    page = clinician.get(f"/admin/campaigns/{CID}")
    assert "Approve" in page.text
    approved = clinician.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/approve",
        data={"csrf_token": c_token, "note": "Matches our advice"},
    )
    assert approved.status_code == 303
    assert _version_ids(console)["approved"] == draft_id
    # An approved version never changes.
    again = marketing.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/files/{STEP}",
        data={**form, "csrf_token": m_token},
    )
    assert again.status_code == 422  # refused input: the page again, text kept

    # Activate asks first, saying how many people get the new content; nothing changes yet.
    asked = marketing.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/activate", data={"csrf_token": m_token}
    )
    assert asked.status_code == 200 and "Activate version" in asked.text
    assert re.search(r"the [\d,]+ (person|people) going through this campaign", asked.text)
    assert _version_ids(console)["approved"] == draft_id
    assert (
        marketing.post(
            f"/admin/campaigns/{CID}/versions/{draft_id}/activate",
            data={"csrf_token": m_token, "confirm": "yes"},
        ).status_code
        == 303
    )
    states = _version_ids(console)
    assert states["active"] == draft_id and "retired" in states
    live = console.ctx.catalog.get(CID)
    assert live is not None and live.version_id == draft_id
    assert live.step("the-first-few-days").default.subject == "Your first days, {{ first_name }}"
    assert "Not yet reviewed" not in marketing.get("/admin/campaigns").text

    with console.ctx.db.begin() as conn:
        edits = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail).where(
                audit_log.c.action == "content.edit"
            )
        ).all()
        actions = set(conn.execute(select(audit_log.c.action)).scalars())
    assert edits[0].actor == STAFF["marketing"]
    assert (
        "Your first days" in edits[0].detail["after"]
        and "Your first days" not in edits[0].detail["before"]
    )
    assert {"content.draft", "content.submit", "content.approve", "content.activate"} <= actions


def test_a_clinician_never_approves_a_version_they_edited(console: Console) -> None:
    clinician, token = console.signed_in("clinician")
    clinician.post(f"/admin/campaigns/{CID}/drafts", data={"csrf_token": token})
    draft_id = _version_ids(console)["draft"]
    form = _editor_form(
        clinician.get(f"/admin/campaigns/{CID}/versions/{draft_id}/files/{STEP}").text
    )
    clinician.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/files/{STEP}",
        data={**form, "subject": "Edited by the clinician", "csrf_token": token},
    )
    clinician.post(f"/admin/campaigns/{CID}/versions/{draft_id}/submit", data={"csrf_token": token})
    refused = clinician.post(
        f"/admin/campaigns/{CID}/versions/{draft_id}/approve", data={"csrf_token": token}
    )
    assert refused.status_code == 403 and "another clinician" in refused.text
    assert _version_ids(console)["in_review"] == draft_id


def test_steps_added_reordered_retired_and_a_variant(console: Console) -> None:
    client, token = console.signed_in("marketing")
    client.post(f"/admin/campaigns/{CID}/drafts", data={"csrf_token": token})
    draft_id = _version_ids(console)["draft"]
    base = f"/admin/campaigns/{CID}/versions/{draft_id}"
    added = client.post(base + "/steps", data={"csrf_token": token, "title": "A new week"})
    assert added.status_code == 303 and added.headers["location"].endswith("-a-new-week.md")
    assert (
        client.post(
            base + f"/files/{STEP}/move", data={"csrf_token": token, "direction": "up"}
        ).status_code
        == 303
    )
    asked = client.post(base + "/files/03-hurt-is-not-harm.md/retire", data={"csrf_token": token})
    assert asked.status_code == 200 and "going through this campaign" in asked.text
    assert (
        client.post(
            base + "/files/03-hurt-is-not-harm.md/retire",
            data={"csrf_token": token, "confirm": "yes"},
        ).status_code
        == 303
    )
    variant = client.post(
        base + "/variants",
        data={
            "csrf_token": token,
            "step": "04-pacing-and-graded-activity.md",
            "variant": "desk",
            "symptoms": ["desk_posture"],
        },
    )
    assert variant.status_code == 303
    with console.ctx.db.begin() as conn:
        files = versions.require(conn, draft_id).files
    assert "01-the-first-few-days.md" in files and "02-why-your-back-locks-up.md" in files
    assert not any(n.startswith("03-hurt-is-not-harm") for n in files)
    assert (
        "04-pacing-and-graded-activity.desk.md" in files
        and "desk_posture" in files["04-pacing-and-graded-activity.md"]
    )
    page = client.get(f"/admin/campaigns/{CID}")
    assert "A new week" in page.text and "for people with pain from desk work" in page.text
    journey = client.get(
        f"/admin/campaigns/{CID}/journey", params={"symptoms": ["lower_back", "desk_posture"]}
    )
    assert journey.status_code == 200 and "desk" in journey.text and "Week" in journey.text
    red = client.get(
        f"/admin/campaigns/{CID}/journey", params={"symptoms": ["red_flag_leg_weakness"]}
    )
    assert "warning sign" in red.text


def test_test_send_goes_to_me_only_and_never_into_the_ledger(console: Console) -> None:
    client, token = console.signed_in("marketing")
    active = _version_ids(console)["active"]
    sent = client.post(
        f"/admin/campaigns/{CID}/versions/{active}/test-send",
        data={
            "csrf_token": token,
            "name": STEP,
            "persona_first_name": "Sam",
            "persona_symptoms": ["neck"],
        },
    )
    assert sent.status_code == 303 and "sent=sent" in sent.headers["location"]
    with console.ctx.db.begin() as conn:
        rows = conn.execute(select(outbox.c.recipient, outbox.c.message)).all()
        ledger = conn.execute(select(func.count()).select_from(sends)).scalar_one()
    assert [r.recipient for r in rows] == [STAFF["marketing"]]
    msg = message_from_bytes(bytes(rows[0].message))
    assert str(msg["Subject"]).startswith("[Test] ")
    assert msg["X-Clinicmail-Test"] == "yes"
    assert ledger == 0
    stats = console.cli("stats", "--json").json()
    assert stats["totals"]["sent"] == 0
