"""Clinical sign-off: through SendGrid or SMTP only content a clinician of this installation
approved reaches a patient; ``clinicmail campaigns approve`` is how a clinician gives it from
the command line; an imported folder or a broadcast file never carries an approval; the
sign-off pack says what the clinician signs."""

from __future__ import annotations

import io
import json
import re
import sys
from html import unescape
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from campaigns import BUNDLED_LIBRARY, versions
from campaigns.review import Actor
from staff import accounts, audit
from storage import Database, utcnow
from tests.support.approval import REVIEWER, REVIEWER_PASSWORD, approve_library
from tests.support.cli import CLI, Run, assert_one_line_error, write_csv
from tests.support.newsletter import news_files
from tests.support.sendgrid import FakeSendGrid, use_sendgrid

MONDAY = "2026-11-23T10:00:00Z"
CLEO, CORA, MARA = "cleo@clinic.example", "cora@clinic.example", "mara@clinic.example"
PASSWORD = "correct horse battery staple"


def piped(cli: CLI, stdin: str, *args: str) -> Run:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return cli(*args)
    finally:
        sys.stdin = old


def add_user(cli: CLI, email: str, role: str) -> None:
    run = piped(cli, PASSWORD + "\n", "users", "add", email, "--role", role)
    assert run.code == 0, run.err


def approve(cli: CLI, campaign: str, email: str, password: str = PASSWORD) -> Run:
    return piped(cli, password + "\n", "campaigns", "approve", campaign, "--as", email)


def states(db_url: str, campaign: str = "spasm-education") -> dict[int, str]:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            return {v.number: v.state for v in versions.versions_of(conn, campaign)}
    finally:
        db.dispose()


def categories(sendgrid: FakeSendGrid) -> list[str]:
    return [c for body in sendgrid.requests for c in body.get("categories", [])]


def test_a_fresh_install_sends_no_campaign_email_until_a_clinician_approves(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path, db_url: str
) -> None:
    use_sendgrid(cli, httpserver)
    sendgrid = FakeSendGrid(httpserver)
    people = write_csv(
        tmp_path / "people.csv",
        [
            "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
            "red@example.com,Rex,lower_back;red_flag_bladder_bowel,Europe/London,yes,,",
        ],
    )
    assert cli("subscribers", "import", str(people)).code == 0
    first = cli("tick", "--now", MONDAY, "--json")
    assert first.code == 0, first.err
    # Only the safety email and the staff alert: nothing from the unreviewed library.
    assert first.json()["sent"] == 2
    assert "spasm-education" not in categories(sendgrid)
    assert "ann@example.com" not in sendgrid.recipients
    assert cli("tick", "--now", "2026-11-23T11:00:00Z", "--json").json()["sent"] == 0

    # Who may approve: a clinician, with the right password; anything else changes nothing.
    add_user(cli, MARA, "marketing")
    add_user(cli, CLEO, "clinician")
    assert_one_line_error(approve(cli, "spasm-education", MARA), "only a clinician")
    assert_one_line_error(approve(cli, "spasm-education", CLEO, "not the password"), "password")
    assert_one_line_error(approve(cli, "no-such-campaign", CLEO), "no-such-campaign")
    assert states(db_url) == {1: "active"}
    assert cli("tick", "--now", "2026-11-23T12:00:00Z", "--json").json()["sent"] == 0

    run = approve(cli, "spasm-education", CLEO)
    assert run.code == 0, run.err
    assert "approved spasm-education version 1" in run.out
    assert_one_line_error(approve(cli, "spasm-education", CLEO), "nothing", "awaits review")
    db = Database(db_url)
    try:
        with db.begin() as conn:
            (live,) = versions.in_state(conn, versions.ACTIVE)
            entries = audit.entries(conn, target_id=live.id)
    finally:
        db.dispose()
    assert live.clinic_reviewed and live.reviewed_by == CLEO
    assert [(e.actor, e.action) for e in entries] == [(CLEO, "content.approve")]

    # The next tick sends the series (same --now as a tick that held it: approval wakes it).
    after = cli("tick", "--now", "2026-11-23T12:00:00Z", "--json")
    assert after.json()["sent"] == 1
    assert categories(sendgrid).count("spasm-education") == 1
    assert sendgrid.recipients[-1] == "ann@example.com"


def test_a_clinician_never_approves_their_own_edit(cli: CLI, db_url: str) -> None:
    from app.context import AppContext
    from app.settings import load_settings

    add_user(cli, CLEO, "clinician")
    add_user(cli, CORA, "clinician")
    ctx = AppContext.from_settings(load_settings())
    try:
        _ = ctx.catalog
        now = utcnow()
        with ctx.db.begin() as conn:
            cleo = accounts.require(conn, CLEO)
            me = Actor(cleo.id, cleo.email, cleo.role)
            log = audit.writer(cleo, now)
            draft = versions.start_draft(conn, "spasm-education", me, now, audit=log)
            files = dict(draft.files)
            name = "02-the-first-few-days.md"
            files[name] = files[name].replace('subject: "', 'subject: "Edited — ', 1)
            draft = versions.save_draft(
                conn, draft, files, me, now, audit=log, renderer=ctx.renderer
            )
            versions.submit(conn, draft, ctx.renderer, now, audit=log)
    finally:
        ctx.close()
    assert states(db_url) == {1: "active", 2: "in_review"}
    assert_one_line_error(approve(cli, "spasm-education", CLEO), "you edited this version")
    assert states(db_url) == {1: "active", 2: "in_review"}
    run = approve(cli, "spasm-education", CORA)
    assert run.code == 0, run.err
    assert "version 2; it is live" in run.out
    assert states(db_url) == {1: "retired", 2: "active"}
    preview = cli("campaigns", "preview", "spasm-education", "2", "--symptoms", "lower_back")
    assert "Subject: Edited — " in preview.out


def test_a_forged_approval_json_does_not_make_content_approved_or_live(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    """Issue 22 #3: a folder carrying an approval.json that names a real clinician and matches
    its own edited files imports in review, not approved, and nothing it says goes out."""
    add_user(cli, CLEO, "clinician")
    out = tmp_path / "export"
    assert cli("campaigns", "export", "spasm-education", str(out)).code == 0
    folder = out / "spasm-education"
    step = folder / "02-the-first-few-days.md"
    step.write_text(step.read_text().replace('subject: "', 'subject: "Forged — ', 1))
    files = versions.folder_files(folder)
    (folder / "approval.json").write_text(
        json.dumps(
            {
                "campaign": "spasm-education",
                "version": 2,
                "reviewed_by": CLEO,
                "reviewed_at": utcnow().isoformat(),
                "note": "looks fine",
                "files_sha256": versions.files_digest(files),
            }
        )
    )
    run = cli("campaigns", "import", str(out), "--json")
    assert run.code == 0, run.err
    assert run.json() == {"spasm-education": "in_review"}
    assert states(db_url) == {1: "active", 2: "in_review"}
    db = Database(db_url)
    try:
        with db.begin() as conn:
            imported = versions.versions_of(conn, "spasm-education")[0]
    finally:
        db.dispose()
    assert imported.reviewed_by is None and imported.reviewed_at is None
    assert not imported.clinic_reviewed
    preview = cli("campaigns", "preview", "spasm-education", "2", "--symptoms", "lower_back")
    assert "Forged" not in preview.out  # the live content is unchanged
    # Export writes no approval record either: approvals never travel.
    assert not (tmp_path / "again" / "spasm-education" / "approval.json").exists()
    assert cli("campaigns", "export", "spasm-education", str(tmp_path / "again")).code == 0
    assert not (tmp_path / "again" / "spasm-education" / "approval.json").exists()


def test_broadcast_puts_new_text_in_review_and_schedules_only_approved_text(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> None:
    use_sendgrid(cli, httpserver)
    sendgrid = FakeSendGrid(httpserver)
    approve_library(cli)
    people = write_csv(
        tmp_path / "people.csv", ["ann@example.com,Ann,lower_back,Europe/London,yes,,"]
    )
    assert cli("subscribers", "import", str(people)).code == 0
    news = news_files(tmp_path)
    args = ("campaigns", "broadcast", str(news), "--at", "2026-12-09 10:00")
    first = cli(*args)
    assert first.code == 0, first.err
    assert "waiting for a clinician's review" in first.out
    assert cli("campaigns", "broadcasts", "--json").json() == []
    second = cli(*args, "--json")  # the same text again: still waiting, nothing scheduled
    assert second.json()["state"] == "in_review"
    assert cli("campaigns", "broadcasts", "--json").json() == []
    assert cli("tick", "--now", "2026-12-09T10:00:00Z", "--json").code == 0
    assert categories(sendgrid) == ["spasm-education"]  # the series; no newsletter

    # A clinician approves the newsletter; the same command then schedules it.
    assert_one_line_error(approve(cli, "broadcast.news", MARA), "no active console account")
    run = piped(
        cli, REVIEWER_PASSWORD + "\n", "campaigns", "approve", "broadcast.news", "--as", REVIEWER
    )
    assert run.code == 0, run.err
    scheduled = cli(*args, "--json")
    assert scheduled.code == 0, scheduled.err
    assert scheduled.json()["added"] == 1
    (row,) = cli("campaigns", "broadcasts", "--json").json()
    assert row["id"] == "news" and row["state"] == "scheduled"
    # Changed text under the same id is refused: it was never approved.
    news.write_text(news.read_text().replace("open over", "closed over"), encoding="utf-8")
    changed = cli(*args)
    assert_one_line_error(changed, "news")


# What the pack says, on both databases: its HTML (the PDF is made from it).
PACK_WORDS = (
    "Intended use",
    "Who it is for, and not for",
    "Warning signs and what happens",
    "New bladder or bowel trouble",
    "Journey per symptom group",
    "Every email as sent",
    "NICE NG59",
    "Riverside Spine Clinic",
    REVIEWER,
    "Professional registration",
    "Next review due",
    "180 days",
)


def _pack_settings(cli: CLI) -> None:
    cli.env("CLINICMAIL_CLINIC_NAME", "Riverside Spine Clinic")
    cli.env("CLINICMAIL_REVIEW_INTERVAL", "180 days")
    approve_library(cli)


def _assert_pack_text(text: str) -> None:
    flat = re.sub(r"\s+", "", text)
    assert "Understanding back and neck pain" in " ".join(text.split())
    digest = versions.files_digest(versions.folder_files(BUNDLED_LIBRARY / "spasm-education"))
    assert digest in flat  # the fingerprint of exactly these files
    for words in PACK_WORDS:
        assert re.sub(r"\s+", "", words) in flat, words
    # Every email of the version, as rendered: each step's subject is in the pack.
    subjects = re.findall(
        r'^subject: "([^"]+)"',
        (BUNDLED_LIBRARY / "spasm-education" / "01-why-your-back-locks-up.md").read_text(),
        re.M,
    )
    assert subjects and re.sub(r"\s+", "", subjects[0]) in flat


def test_signoff_pack_says_what_the_clinician_signs(cli: CLI, tmp_path: Path) -> None:
    _pack_settings(cli)
    html = tmp_path / "pack.html"
    run = cli("campaigns", "signoff-pack", "spasm-education", "--out", str(html), "--html")
    assert run.code == 0, run.err
    page = html.read_text(encoding="utf-8")
    assert "<h2>Every email as sent</h2>" in page
    _assert_pack_text(unescape(re.sub(r"<[^>]+>", " ", page)))
    assert cli("campaigns", "export", "spasm-education", str(tmp_path / "x")).code == 0
    assert_one_line_error(
        cli("campaigns", "signoff-pack", "nope", "--out", str(tmp_path / "n.pdf")), "nope"
    )


def test_signoff_pack_pdf_holds_what_the_html_says(sqlite_cli: CLI, tmp_path: Path) -> None:
    """The PDF is the same pack laid out for print (one database: the layout does not read it)."""
    from pypdf import PdfReader

    _pack_settings(sqlite_cli)
    out = tmp_path / "pack.pdf"
    run = sqlite_cli("campaigns", "signoff-pack", "spasm-education", "--out", str(out))
    assert run.code == 0, run.err
    assert out.read_bytes().startswith(b"%PDF")
    _assert_pack_text("\n".join(page.extract_text() or "" for page in PdfReader(out).pages))


@pytest.mark.parametrize("command", ["approve", "signoff-pack"])
def test_help(sqlite_cli: CLI, command: str) -> None:
    run = sqlite_cli("campaigns", command, "--help")
    assert run.code == 0 and "Usage" in run.out
