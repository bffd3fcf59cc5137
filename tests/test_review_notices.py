"""Email notices of the review workflow (scheduler.review_notices): a submission tells every
clinician but the submitter; a decision (approved, changes requested) tells the author; each
step is told once, through the staff-alert path (here the outbox transport, read back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import Message

from fastapi.testclient import TestClient

from campaigns import versions
from scheduler.alerting import deliverer
from scheduler.review_notices import send_review_notices
from storage import utcnow
from tests.support.approval import REVIEWER, approve_library
from tests.support.cli import CLI
from tests.support.console import STAFF, Console, console_fixture  # noqa: F401
from tests.support.outbox import messages, outbox_messages, text_part

CID = "spasm-education"


def _notices(console: Console) -> list[tuple[str, str, str]]:
    out = []
    for msg in messages(console.ctx):
        subject = str(msg["Subject"])
        if subject.startswith(("Review requested", "Approved", "Changes requested")):
            out.append((str(msg["To"]), subject, text_part(msg)))
    return out


def _draft(console: Console, token: str, client: TestClient) -> str:
    made = client.post(f"/admin/campaigns/{CID}/drafts", data={"csrf_token": token})
    assert made.status_code == 303, made.text
    with console.ctx.db.begin() as conn:
        draft = versions.draft_of(conn, CID)
    assert draft is not None
    return draft.id


def _tell(console: Console) -> int:
    """Raise the notices, then deliver them as a tick does."""
    raised = send_review_notices(console.ctx, utcnow())
    deliverer(console.ctx).deliver(utcnow())
    return raised


def test_submission_tells_the_clinicians_and_the_decision_tells_the_author(
    console: Console,
) -> None:
    marketing, m_token = console.signed_in("marketing")
    cleo, c_token = console.signed_in("clinician")
    draft = _draft(console, m_token, marketing)
    base = f"/admin/campaigns/{CID}/versions/{draft}"
    assert marketing.post(f"{base}/submit", data={"csrf_token": m_token}).status_code == 303
    assert _tell(console) == 1
    ((to, subject, text),) = _notices(console)
    assert to == STAFF["clinician"]
    assert subject == f"Review requested: {CID}, version 2"
    assert STAFF["marketing"] in text
    assert f"/admin/reviews/versions/{draft}" in text
    assert _tell(console) == 0  # once per step

    sent_back = cleo.post(
        f"{base}/request-changes", data={"csrf_token": c_token, "note": "Cite NICE NG59 here"}
    )
    assert sent_back.status_code == 303
    assert marketing.post(f"{base}/submit", data={"csrf_token": m_token}).status_code == 303
    approved = cleo.post(f"{base}/approve", data={"csrf_token": c_token, "note": "Good now"})
    assert approved.status_code == 303, approved.text
    assert _tell(console) == 3
    notices = _notices(console)[1:]
    assert [(to, subject) for to, subject, _ in notices] == [
        (STAFF["marketing"], f"Changes requested: {CID}, version 2"),
        (STAFF["clinician"], f"Review requested: {CID}, version 2"),
        (STAFF["marketing"], f"Approved: {CID}, version 2"),
    ]
    assert "Cite NICE NG59 here" in notices[0][2] and STAFF["clinician"] in notices[0][2]
    assert "Good now" in notices[2][2]


def test_a_newsletter_submission_is_told_and_nobody_hears_of_their_own_step(
    console: Console,
) -> None:
    cleo, c_token = console.signed_in("clinician")
    letter = {
        "slug": "winter-news",
        "subject": "Winter opening hours",
        "preheader": "When we are open.",
        "body": "Hi {{ first_name }},\n\nWe are open all winter.\n",
        "local_at": "2026-12-10T10:00",
        "csrf_token": c_token,
    }
    created = cleo.post("/admin/newsletters", data=letter)
    assert created.status_code == 303, created.text
    nid = created.headers["location"].rsplit("/", 1)[-1]
    assert cleo.post(f"/admin/newsletters/{nid}/submit", data={"csrf_token": c_token}).is_redirect
    # The only clinician submitted it: nobody else to tell, and the step is passed over.
    assert _tell(console) == 0
    assert _notices(console) == []
    # The next step is told as usual.
    ops, o_token = console.signed_in("ops")
    marketing, m_token = console.signed_in("marketing")
    draft = _draft(console, m_token, marketing)
    marketing.post(f"/admin/campaigns/{CID}/versions/{draft}/submit", data={"csrf_token": m_token})
    assert _tell(console) == 1
    msg: Message = messages(console.ctx, STAFF["clinician"])[-1]
    assert str(msg["Subject"]).startswith("Review requested")
    assert ops is not None and o_token


def test_clinicians_hear_once_before_a_review_lapses(cli: CLI, db_url: str) -> None:
    cli.env("CLINICMAIL_REVIEW_INTERVAL", "90 days")  # told 22.5 days before it lapses
    approve_library(cli)  # on the suite's clock: Saturday 21 November 2026

    def due_notices() -> list[tuple[str, str, str]]:
        return [m for m in outbox_messages(db_url) if m[1].startswith("Clinical review due")]

    early = datetime(2027, 1, 20, 10, tzinfo=UTC)  # 60 days on: not yet
    assert cli("tick", "--now", early.isoformat()).code == 0
    assert due_notices() == []
    soon = datetime(2027, 2, 5, 10, tzinfo=UTC)  # 76 days on: within the warning
    assert cli("tick", "--now", soon.isoformat(), "--json").json()["review_notices"] >= 1
    (notice,) = due_notices()
    to, subject, text = notice
    assert to == REVIEWER
    assert subject == "Clinical review due soon: 1 campaign"
    assert "spasm-education (due 19 Feb 2027)" in text and "90 days" in text
    assert "https://mail.clinic.example/admin/reviews" in text
    # Once per due date: later ticks, before and after it lapses, say nothing more.
    for later in (soon + timedelta(days=1), datetime(2027, 3, 1, 10, tzinfo=UTC)):
        cli("tick", "--now", later.isoformat())
    assert len(due_notices()) == 1
