"""Red-flag follow-up in a real browser (Debian's chromium driven by Playwright) against a real
`clinicmail serve`: a patient signs up with a warning sign and confirms; the follow-up is on
the clinician's list with what they reported and counted on the dashboard; left alone past the
follow-up time (`tick --now` days later) staff get one reminder naming nobody; marketing cannot
see it; the clinician records "contacted" with a note, which the audit log keeps (the outcome,
never the note). Screenshots go to artifacts/screenshots/ when CLINICMAIL_TEST_SCREENSHOTS=1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Site, shot, sign_in, unlabelled
from tests.support.console import STAFF

FRONT_DESK = "frontdesk@clinic.example"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    s.env["CLINICMAIL_STAFF_EMAIL"] = FRONT_DESK
    s.init(staff=True)
    with s.serving():
        yield s


def _outbox(site: Site) -> list[dict[str, Any]]:
    return list(json.loads(site.cli("outbox", "list", "--limit", "50", "--json")))


def _audit(site: Site) -> list[tuple[str, str, str, Any]]:
    rows = site.rows(
        "SELECT actor, action, target_id, detail FROM audit_log "
        "WHERE target_type = 'followup' ORDER BY id"
    )
    return [(r[0], r[1], r[2], json.loads(r[3]) if isinstance(r[3], str) else r[3]) for r in rows]


def _sign_up_with_a_warning_sign(browser: Any, site: Site) -> None:
    context = browser.new_context(timezone_id="Europe/London")
    page = context.new_page()
    page.goto(f"{site.base}/signup")
    page.fill("#email", "rhea@example.com")
    page.fill("#first_name", "Rhea")
    page.locator("input[value=lower_back]").check()
    page.locator("input[value=red_flag_leg_weakness]").check()
    page.locator("#consent").check()
    page.locator("#health_consent").check()
    page.locator("button[type=submit]").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    site.person("rhea@example.com")
    site.cli("tick")  # the confirmation email
    page.goto(site.link_in_latest("confirm"))
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", name="Thank you, you're subscribed")).to_be_visible()
    context.close()


@pytest.mark.real_clock  # the server runs on the machine's clock; `tick --now` moves on from it
def test_a_red_flag_signup_is_followed_up_in_a_browser(browser: Any, site: Site) -> None:
    _sign_up_with_a_warning_sign(browser, site)
    site.cli("tick")  # the safety email and the staff alert
    sent = {(m["to"], m["subject"]) for m in _outbox(site)}
    assert ("rhea@example.com", "Please get medical care now") in sent
    assert any(to == FRONT_DESK for to, _ in sent)

    clinician, page = sign_in(browser, site, "clinician", start="/admin")
    count = page.locator("#followup-count")
    expect(count).to_be_visible()
    expect(count.locator("[data-count=open]")).to_have_text("1")
    page.get_by_role("link", name="Follow-ups").first.click()
    page.wait_for_url(re.compile(r"/admin/followups$"))
    item = page.locator("article.followup")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("rhea@example.com")
    expect(item.locator(".reported")).to_have_text("Leg weakness getting worse")
    expect(item).to_contain_text("Warning sign at signup")
    public_id = item.get_attribute("data-followup")
    assert public_id and public_id.startswith("fu_")
    # What they reported is on the page, never in its address or its links.
    assert all(
        "rhea" not in (href or "") and "red_flag" not in (href or "")
        for href in page.locator("a").evaluate_all("els => els.map(e => e.href)")
    )
    assert unlabelled(page) == 0
    shot(page, "followups-01-open")

    # Marketing sees neither the list nor the count.
    marketing, mpage = sign_in(browser, site, "marketing", start="/admin")
    expect(mpage.locator("#totals")).to_be_visible()
    assert mpage.locator("#followup-count").count() == 0
    assert mpage.get_by_role("link", name="Follow-ups").count() == 0
    assert mpage.request.get(f"{site.base}/admin/followups").status == 403
    marketing.close()

    # Nobody replies: days later the tick reminds staff once, naming nobody.
    later = datetime.now(UTC) + timedelta(days=5)
    first = json.loads(site.cli("tick", "--now", later.isoformat(), "--json"))
    assert first["followups_reminded"] == 1
    again = json.loads(
        site.cli("tick", "--now", (later + timedelta(hours=1)).isoformat(), "--json")
    )
    assert again["followups_reminded"] == 0
    (reminder,) = [m for m in _outbox(site) if m["subject"].startswith("Reminder: follow-ups")]
    assert reminder["to"] == FRONT_DESK
    body = site.cli("outbox", "show", str(reminder["id"]))
    assert f"{site.base}/admin/followups" in body
    for private in ("rhea", "Rhea", "Leg weakness", "red_flag"):
        assert private not in body
    page.reload()
    expect(item).to_contain_text("staff reminded")

    # The clinician records the call; the note stays here, the audit log keeps the outcome.
    item.get_by_label("Contacted").check()
    item.get_by_label("Note").fill("Phoned Rhea: seen at A&E today, no further action from us")
    item.get_by_role("button", name="Record").click()
    page.wait_for_url(re.compile(r"done=1"))
    expect(page.locator("#followup-done")).to_be_visible()
    expect(page.locator("#no-followups")).to_be_visible()
    closed = page.locator(f"#followups-closed tr[data-followup={public_id}]")
    expect(closed).to_contain_text("Contacted")
    expect(closed).to_contain_text("Phoned Rhea")
    expect(closed).to_contain_text(STAFF["clinician"])
    shot(page, "followups-02-closed")
    assert _audit(site) == [
        (STAFF["clinician"], "followup.contacted", public_id, {"outcome": "contacted"})
    ]

    # Closing it again from a stale page is refused and records nothing.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    stale = page.request.post(
        f"{site.base}/admin/followups/{public_id}",
        form={"csrf_token": token or "", "outcome": "no_action", "note": "late"},
        max_redirects=0,
    )
    assert stale.status == 409 and "already closed" in stale.text()
    assert len(_audit(site)) == 1

    page.goto(f"{site.base}/admin")
    expect(count.locator("[data-count=open]")).to_have_text("0")
    shot(page, "followups-03-dashboard")
    clinician.close()
