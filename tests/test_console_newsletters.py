"""Newsletters in the console over HTTP: compose with a live preview and audience count,
the per-zone plan of ``campaigns broadcast --dry-run``, clinical review (a clinician who did
not edit it), schedule, progress and cancel."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import time_machine
from sqlalchemy import delete, select

from campaigns.newsletters import newsletters
from campaigns.tables import enrollments
from staff.tables import audit_log
from tests.support.backends import sqlite_only
from tests.support.console import STAFF, Console
from tests.support.engagement import MONDAY, import_and_send

ROWS = [
    "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
    "bob@example.com,Bob,neck,Europe/London,yes,,",
    "cat@example.com,Cat,lower_back,America/New_York,yes,,",
]
FORM: dict[str, Any] = {
    "slug": "december-news",
    "subject": "Our December opening hours",
    "preheader": "Open until the 23rd",
    "body": "Hello {{ first_name }},\n\nWe are open until 23 December.\n",
    "local_at": "2026-12-10T10:00",
    "seg_codes": ["lower_back"],
}


def _id_of(location: str) -> str:
    found = re.fullmatch(r"/admin/newsletters/([0-9a-f]{32})", location)
    assert found, location
    return found.group(1)


def test_compose_review_schedule_progress_and_cancel(console: Console, tmp_path: Path) -> None:
    import_and_send(console.cli, tmp_path, ROWS)
    with time_machine.travel(MONDAY + timedelta(hours=1), tick=False):
        marketing, csrf = console.signed_in("marketing")
        # the live panel: preview, audience count and the dry-run plan by zone
        live = marketing.post("/admin/newsletters/preview", data={**FORM, "csrf_token": csrf})
        assert live.status_code == 200
        assert re.search(r'id="audience-count">2<', live.text), live.text
        assert "We are open until 23 December" in live.text
        assert "Europe/London" in live.text and "America/New_York" in live.text
        dry = console.cli(
            "campaigns",
            "broadcast",
            str(_file(tmp_path)),
            "--at",
            "2026-12-10 10:00",
            "--segment",
            "{all: [{has_any: [lower_back]}]}",
            "--id",
            "december-news",
            "--dry-run",
            "--json",
        ).json()
        for z in dry["zones"]:
            assert (
                z["zone"] in live.text and z["utc"].replace("T", " ").replace("Z", "") in live.text
            )
        broken = marketing.post(
            "/admin/newsletters/preview",
            data={**FORM, "body": "Hello {{ first_name", "csrf_token": csrf},
        )
        assert 'data-finding="error"' in broken.text

        created = marketing.post("/admin/newsletters", data={**FORM, "csrf_token": csrf})
        assert created.status_code == 303
        nid = _id_of(created.headers["location"])
        taken = marketing.post("/admin/newsletters", data={**FORM, "csrf_token": csrf})
        assert taken.status_code == 422 and "taken" in taken.text
        assert (
            marketing.post(
                f"/admin/newsletters/{nid}/submit", data={"csrf_token": csrf}
            ).status_code
            == 303
        )
        # marketing cannot approve: no button, and the POST is refused
        page = marketing.get(f"/admin/newsletters/{nid}")
        assert 'id="approve"' not in page.text
        assert (
            marketing.post(
                f"/admin/newsletters/{nid}/approve", data={"csrf_token": csrf}
            ).status_code
            == 403
        )
        clinician, ccsrf = console.signed_in("clinician")
        assert 'id="approve"' in clinician.get(f"/admin/newsletters/{nid}").text
        assert (
            clinician.post(
                f"/admin/newsletters/{nid}/approve", data={"note": "fine", "csrf_token": ccsrf}
            ).status_code
            == 303
        )
        # approved text never changes
        edit = marketing.post(
            f"/admin/newsletters/{nid}", data={**FORM, "subject": "x", "csrf_token": csrf}
        )
        assert edit.status_code == 409
        # Schedule says first how many people get it and when; nothing is scheduled yet.
        asked = marketing.post(f"/admin/newsletters/{nid}/schedule", data={"csrf_token": csrf})
        assert asked.status_code == 200
        assert "It goes to 2 people, arriving Thursday 10 December 2026 at 10:00" in asked.text
        assert console.cli("campaigns", "broadcasts", "--json").json() == []
        scheduled = marketing.post(
            f"/admin/newsletters/{nid}/schedule", data={"csrf_token": csrf, "confirm": "yes"}
        )
        assert scheduled.status_code == 303
        listing = console.cli("campaigns", "broadcasts", "--json").json()
        assert [(b["id"], b["state"], b["audience"]) for b in listing] == [
            ("december-news", "scheduled", 2)
        ]
        progress = marketing.get(f"/admin/newsletters/{nid}/progress")
        assert re.search(r'id="progress-audience">2<', progress.text)
        assert "every 10s" in progress.text
        asked = marketing.post(f"/admin/newsletters/{nid}/cancel", data={"csrf_token": csrf})
        assert asked.status_code == 200
        assert re.search(r"\b\d emails? still waiting will not be sent", asked.text), asked.text[
            -1500:
        ]
        assert console.cli("campaigns", "broadcasts", "--json").json()[0]["state"] == "scheduled"
        cancelled = marketing.post(
            f"/admin/newsletters/{nid}/cancel", data={"csrf_token": csrf, "confirm": "yes"}
        )
        assert cancelled.status_code == 303
    assert console.cli("campaigns", "broadcasts", "--json").json()[0]["state"] == "cancelled"
    with console.ctx.db.begin() as conn:
        waiting = (
            conn.execute(
                select(enrollments.c.status).where(
                    enrollments.c.campaign_id == "broadcast.december-news"
                )
            )
            .scalars()
            .all()
        )
        actions = conn.execute(
            select(audit_log.c.actor, audit_log.c.action)
            .where(audit_log.c.target_type == "newsletter")
            .order_by(audit_log.c.id)
        ).all()
    assert waiting and "active" not in waiting
    assert [a for _, a in actions] == [
        "newsletter.create",
        "newsletter.submit",
        "newsletter.approve",
        "newsletter.schedule",
        "newsletter.cancel",
    ]
    assert actions[2][0] == STAFF["clinician"]


def test_an_editor_cannot_approve_their_own_newsletter(console: Console) -> None:
    clinician, csrf = console.signed_in("clinician")
    created = clinician.post("/admin/newsletters", data={**FORM, "csrf_token": csrf})
    nid = _id_of(created.headers["location"])
    assert (
        clinician.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": csrf}).status_code
        == 303
    )
    page = clinician.get(f"/admin/newsletters/{nid}")
    assert "another clinician must review it" in page.text and 'id="approve"' not in page.text
    refused = clinician.post(f"/admin/newsletters/{nid}/approve", data={"csrf_token": csrf})
    assert refused.status_code == 403
    bad = clinician.post("/admin/newsletters", data={**FORM, "slug": "Bad Id", "csrf_token": csrf})
    assert bad.status_code == 422 and "lowercase" in bad.text
    missing = clinician.get("/admin/newsletters/" + "0" * 32)
    assert missing.status_code == 404 and "No such newsletter" in missing.text
    approve_missing = clinician.post(
        "/admin/newsletters/" + "0" * 32 + "/approve", data={"csrf_token": csrf}
    )
    assert approve_missing.status_code == 404 and "No such newsletter" in approve_missing.text


def _file(tmp_path: Path) -> Path:
    from campaigns.newsletters import markdown

    path = tmp_path / "december-news.md"
    path.write_text(markdown(FORM["subject"], FORM["preheader"], FORM["body"]), encoding="utf-8")
    return path


def test_a_time_sensitive_newsletter_is_scheduled_as_one(console: Console, tmp_path: Path) -> None:
    """Marked time-sensitive in the editor, it is stored and scheduled with the flag the
    weekly cap honours (the same as ``campaigns broadcast --time-sensitive``)."""
    from campaigns import broadcasts as bc

    import_and_send(console.cli, tmp_path, ROWS)
    form = {**FORM, "slug": "closed-today", "time_sensitive": "on"}
    with time_machine.travel(MONDAY + timedelta(hours=1), tick=False):
        marketing, csrf = console.signed_in("marketing")
        live = marketing.post("/admin/newsletters/preview", data={**form, "csrf_token": csrf})
        assert live.status_code == 200
        created = marketing.post("/admin/newsletters", data={**form, "csrf_token": csrf})
        assert created.status_code == 303
        nid = _id_of(created.headers["location"])
        page = marketing.get(f"/admin/newsletters/{nid}")
        assert re.search(r'id="time_sensitive"[^>]*checked', page.text)
        marketing.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": csrf})
        clinician, ccsrf = console.signed_in("clinician")
        approved = clinician.post(
            f"/admin/newsletters/{nid}/approve", data={"note": "urgent", "csrf_token": ccsrf}
        )
        assert approved.status_code == 303
        scheduled = marketing.post(
            f"/admin/newsletters/{nid}/schedule", data={"csrf_token": csrf, "confirm": "yes"}
        )
        assert scheduled.status_code == 303
    with console.ctx.db.begin() as conn:
        stored = bc.find(conn, bc.campaign_id_for("closed-today"))
    assert stored is not None and stored.time_sensitive is True


def _submitted(console: Console, form: dict[str, Any]) -> tuple[Any, str, str]:
    marketing, csrf = console.signed_in("marketing")
    created = marketing.post("/admin/newsletters", data={**form, "csrf_token": csrf})
    assert created.status_code == 303, created.text
    return marketing, csrf, _id_of(created.headers["location"])


def _state(console: Console, nid: str) -> Any:
    from campaigns import newsletters as nl

    with console.ctx.db.begin() as conn:
        return nl.require(conn, nid)


@sqlite_only("a time is judged before anything is stored")
def test_a_past_or_too_soon_time_is_refused_before_review(console: Console) -> None:
    # The suite's clock: Saturday 21 November 2026, 09:00 UTC (the clinic's zone: London).
    marketing, csrf, nid = _submitted(console, {**FORM, "local_at": "2026-11-20T10:00"})
    past = marketing.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": csrf})
    assert past.status_code == 422
    assert "Not submitted: The delivery time 20 Nov 2026 10:00 has already passed" in past.text
    assert 'id="local_at"' in past.text  # the editor again, where the date can be changed
    assert _state(console, nid).state == "draft"
    # Minutes away: too soon for a clinician to review.
    form = {**FORM, "local_at": "2026-11-21T09:20", "csrf_token": csrf}
    assert marketing.post(f"/admin/newsletters/{nid}", data=form).status_code == 303
    soon = marketing.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": csrf})
    assert soon.status_code == 422 and "too soon for a clinician to review" in soon.text
    # Outside the send window: said now, not after the review.
    form = {**FORM, "local_at": "2026-12-10T03:00", "csrf_token": csrf}
    assert marketing.post(f"/admin/newsletters/{nid}", data=form).status_code == 303
    night = marketing.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": csrf})
    assert night.status_code == 422 and "outside the send window" in night.text
    assert _state(console, nid).state == "draft"
    form = {**FORM, "local_at": "2026-12-10T10:00", "csrf_token": csrf}
    assert marketing.post(f"/admin/newsletters/{nid}", data=form).status_code == 303
    ok = marketing.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": csrf})
    assert ok.status_code == 303 and _state(console, nid).state == "in_review"


def test_an_approved_newsletter_is_retimed_without_a_new_review(console: Console) -> None:
    marketing, csrf, nid = _submitted(console, FORM)
    assert marketing.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": csrf}).is_redirect
    clinician, ccsrf = console.signed_in("clinician")
    approved = clinician.post(f"/admin/newsletters/{nid}/approve", data={"csrf_token": ccsrf})
    assert approved.status_code == 303
    before = _state(console, nid)
    page = marketing.get(f"/admin/newsletters/{nid}").text
    assert 'id="retime"' in page
    # A time that has passed, or outside the send window, is refused; nothing changes.
    for bad, said in (("2026-11-20T10:00", "has already passed"), ("2026-12-11T03:00", "window")):
        refused = marketing.post(
            f"/admin/newsletters/{nid}/retime", data={"csrf_token": csrf, "local_at": bad}
        )
        assert refused.status_code == 422 and said in refused.text
        assert _state(console, nid).local_at == "2026-12-10T10:00"
    moved = marketing.post(
        f"/admin/newsletters/{nid}/retime",
        data={"csrf_token": csrf, "local_at": "2026-12-11T11:30"},
    )
    assert moved.status_code == 303
    after = _state(console, nid)
    assert after.state == "approved" and after.local_at == "2026-12-11T11:30"
    assert (after.subject, after.body, after.reviewed_by) == (
        before.subject,
        before.body,
        before.reviewed_by,
    )
    assert "no new review is needed" in marketing.get(moved.headers["location"]).text
    with console.ctx.db.begin() as conn:
        (detail,) = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "newsletter.retime")
        ).scalars()
    detail = detail if isinstance(detail, dict) else __import__("json").loads(detail)
    assert detail["before"] == {"local_at": "2026-12-10T10:00"}
    assert detail["after"] == {"local_at": "2026-12-11T11:30"}
    # It schedules for the new time, on the approval it had.
    asked = marketing.post(f"/admin/newsletters/{nid}/schedule", data={"csrf_token": csrf})
    assert "Friday 11 December 2026 at 11:30" in asked.text
    done = marketing.post(
        f"/admin/newsletters/{nid}/schedule", data={"csrf_token": csrf, "confirm": "yes"}
    )
    assert done.status_code == 303 and _state(console, nid).state == "scheduled"
    # Once scheduled, no re-timing (cancel and duplicate instead).
    late = marketing.post(
        f"/admin/newsletters/{nid}/retime",
        data={"csrf_token": csrf, "local_at": "2026-12-12T10:00"},
    )
    assert late.status_code == 409 and _state(console, nid).local_at == "2026-12-11T11:30"
    # A draft cannot be re-timed this way either (it is edited).
    _, _, draft = _submitted(console, {**FORM, "slug": "other-news"})
    assert (
        marketing.post(
            f"/admin/newsletters/{draft}/retime",
            data={"csrf_token": csrf, "local_at": "2026-12-12T10:00"},
        ).status_code
        == 409
    )


def test_a_test_send_goes_to_the_signed_in_staff_member_only(console: Console) -> None:
    from campaigns.ledger import sends
    from transports.tables import outbox

    marketing, csrf, nid = _submitted(console, FORM)
    sent = marketing.post(f"/admin/newsletters/{nid}/test-send", data={"csrf_token": csrf})
    assert sent.status_code == 303
    assert f"sent to {STAFF['marketing']}" in marketing.get(sent.headers["location"]).text
    with console.ctx.db.begin() as conn:
        rows = conn.execute(select(outbox.c.recipient, outbox.c.message)).all()
        ledger = conn.execute(select(sends.c.id)).all()
        actions = conn.execute(select(audit_log.c.action)).scalars().all()
    assert [r.recipient for r in rows] == [STAFF["marketing"]]
    from email import message_from_bytes

    msg = message_from_bytes(bytes(rows[0].message))
    assert str(msg["Subject"]) == "[Test] Our December opening hours"
    assert msg["X-Clinicmail-Test"] == "yes"
    assert ledger == [] and "newsletter.test_send" in actions


def test_duplicate_makes_a_new_draft_with_the_same_content(console: Console) -> None:
    marketing, csrf, nid = _submitted(console, FORM)
    assert marketing.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": csrf}).is_redirect
    copied = marketing.post(f"/admin/newsletters/{nid}/duplicate", data={"csrf_token": csrf})
    assert copied.status_code == 303
    copy_id = _id_of(copied.headers["location"])
    original, copy = _state(console, nid), _state(console, copy_id)
    assert copy_id != nid and copy.slug == "december-news-copy"
    assert copy.state == "draft" and original.state == "in_review"
    assert (copy.subject, copy.preheader, copy.body, copy.audience) == (
        original.subject,
        original.preheader,
        original.body,
        original.audience,
    )
    assert copy.local_at is None  # when it arrives is chosen again
    assert "Copied from december-news" in marketing.get(copied.headers["location"]).text
    again = marketing.post(f"/admin/newsletters/{nid}/duplicate", data={"csrf_token": csrf})
    assert _state(console, _id_of(again.headers["location"])).slug == "december-news-copy-2"


def test_a_broadcast_stored_without_a_newsletter_is_cancelled_in_the_console(
    console: Console, tmp_path: Path
) -> None:
    """The list shows broadcasts stored without a newsletter of the console's (scheduled before
    the console kept newsletters) and cancels them there too: a confirmation that counts who is still waiting, then the same cancel as
    ``clinicmail campaigns cancel-broadcast``, audited as the person who clicked."""
    from tests.support.approval import broadcast_approved
    from tests.support.newsletter import news_files

    import_and_send(console.cli, tmp_path, ROWS)
    news = news_files(tmp_path)
    assert broadcast_approved(console.cli, str(news), "--at", "2026-12-10 10:00").code == 0
    # As one stored before newsletters were kept in the console: a broadcast on its own.
    with console.ctx.db.begin() as conn:
        conn.execute(delete(newsletters).where(newsletters.c.slug == "news"))
    ops, csrf = console.signed_in("ops")
    listed = ops.get("/admin/newsletters")
    assert 'action="/admin/newsletters/broadcasts/news/cancel"' in listed.text
    assert "cancel-broadcast" not in listed.text  # no terminal needed
    asked = ops.post("/admin/newsletters/broadcasts/news/cancel", data={"csrf_token": csrf})
    assert asked.status_code == 200
    assert re.search(r"\b\d emails? still waiting will not be sent", asked.text), asked.text[-1500:]
    assert console.cli("campaigns", "broadcasts", "--json").json()[0]["state"] == "scheduled"
    done = ops.post(
        "/admin/newsletters/broadcasts/news/cancel", data={"csrf_token": csrf, "confirm": "yes"}
    )
    assert done.status_code == 303
    assert console.cli("campaigns", "broadcasts", "--json").json()[0]["state"] == "cancelled"
    with console.ctx.db.begin() as conn:
        actions = [
            (r.actor, r.action, r.target_id)
            for r in conn.execute(select(audit_log).order_by(audit_log.c.id))
        ]
    assert (STAFF["ops"], "broadcast.cancel", "news") in actions
    again = ops.get("/admin/newsletters")
    assert 'action="/admin/newsletters/broadcasts/news/cancel"' not in again.text
    missing = ops.post("/admin/newsletters/broadcasts/nope/cancel", data={"csrf_token": csrf})
    assert missing.status_code == 404
