"""The console for daily use, in a real browser (Debian's chromium driven by Playwright) against
a real `clinicmail serve`: typed text survives a session that ends mid-edit; leaving a page
with unsaved text asks first; retiring the live version needs a clinician or ops and a
confirmation that names how many people it stops; looking at an outbox message (a staff
browser) counts no open, while the same pixel fetched by anyone else does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from storage import Database
from tests.support.browser import Site, open_draft, shot, sign_in
from tests.support.console import PASSWORD, STAFF
from tests.support.wait import wait_until
from transports.outbox import stored_message

PEOPLE = 12
AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("daily")
    s = Site(tmp_path)
    s.init(staff=True)
    csv = tmp_path / "people.csv"
    csv.write_text(
        "email,first_name,symptoms,timezone,consent,consent_at,source\n"
        + "".join(
            f"d{i:02d}@example.com,Person{i},lower_back;sciatica,Europe/London,yes,,\n"
            for i in range(PEOPLE)
        ),
        encoding="utf-8",
    )
    s.cli("subscribers", "import", str(csv))
    s.cli("tick", "--now", AT.isoformat())  # the first emails, stored by the outbox transport
    with s.serving():
        yield s


def _scalar(site: Site, sql: str, **params: Any) -> Any:
    found = site.rows(sql, **params)
    return found[0][0] if found else None


def _open_editor(page: Any, site: Site, campaign_id: str) -> None:
    open_draft(page, site, campaign_id)
    page.locator("a[href*='/versions/'][href$='.md']").first.click()
    page.wait_for_selector("#preview-subject")


def test_a_session_ending_mid_edit_keeps_the_typed_text(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "marketing")
    _open_editor(page, site, "spasm-education")
    editor_url = page.url.split("?")[0]

    # Signed out in another tab while this one is open.
    other = context.new_page()
    other.goto(f"{site.base}/admin")
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_url(re.compile(r"/admin/login"))
    other.close()

    typed = "Typed after the session had ended: keep me."
    page.locator("#body").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n" + typed)
    # The autosave finds the session gone: it says so and stays on the page, text and all.
    expect(page.locator("#sign-in-again")).to_be_visible(timeout=15_000)
    assert "/files/" in page.url
    assert typed in page.locator("#body").input_value()
    shot(page, "daily-01-session-ended-text-kept")

    # Reloading (as the old console did on the next keystroke) lands on the sign-in form; after
    # signing in, the editor brings the text back and saves it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.reload()
    page.wait_for_url(re.compile(r"/admin/login"))
    page.fill("#email", STAFF["marketing"])
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(editor_url) + "$"))
    assert typed in page.locator("#body").input_value()
    expect(page.locator("#save-state")).to_contain_text(
        re.compile(r"Saved \d\d:\d\d"), timeout=15_000
    )
    expect(page.locator("#undo-save")).to_be_visible()

    # What the server holds now has the text (a fresh page, nothing kept in the tab).
    fresh = context.new_page()
    fresh.goto(editor_url)
    assert typed in fresh.locator("#body").input_value()
    context.close()


def test_leaving_a_page_with_unsaved_text_asks_first(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "marketing", start="/admin/newsletters/new")
    seen: list[str] = []

    def stay(dialog: Any) -> None:
        seen.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", stay)
    page.locator("#subject").click()
    page.keyboard.type("Winter opening hours")
    page.get_by_role("link", name="← All newsletters").click()
    wait_until(lambda: seen, timeout=10, message="the leave-page warning was never shown")
    assert seen == ["beforeunload"]
    assert page.url.endswith("/admin/newsletters/new")
    assert page.locator("#subject").input_value() == "Winter opening hours"

    # Nothing typed: leaving asks nothing.
    page.remove_listener("dialog", stay)
    clean, cpage = sign_in(browser, site, "marketing", start="/admin/newsletters/new")
    cpage.on("dialog", lambda d: seen.append("unexpected " + d.type))
    cpage.get_by_role("link", name="← All newsletters").click()
    cpage.wait_for_url(re.compile(r"/admin/newsletters$"))
    assert seen == ["beforeunload"]
    clean.close()
    context.close()


def test_retiring_the_live_version_needs_a_confirmation_naming_the_count(
    browser: Any, site: Site
) -> None:
    campaign_id = _scalar(
        site,
        "SELECT campaign_id FROM enrollments WHERE status = 'active' "
        "GROUP BY campaign_id ORDER BY count(*) DESC LIMIT 1",
    )
    people = _scalar(
        site,
        "SELECT count(*) FROM enrollments WHERE status = 'active' AND campaign_id = :c",
        c=campaign_id,
    )
    assert people > 0

    # Marketing has no Retire on the live version, and its POST is refused.
    marketing, mpage = sign_in(browser, site, "marketing", start=f"/admin/campaigns/{campaign_id}")
    live_row = mpage.locator("tr", has=mpage.locator("[data-state=active]"))
    assert live_row.get_by_role("button", name="Retire…").count() == 0
    token = mpage.locator("input[name=csrf_token]").first.get_attribute("value")
    version_id = _scalar(
        site,
        "SELECT id FROM campaign_versions WHERE campaign_id = :c AND state = 'active'",
        c=campaign_id,
    )
    refused = mpage.request.post(
        f"{site.base}/admin/campaigns/{campaign_id}/versions/{version_id}/retire",
        form={"csrf_token": token, "confirm": "yes"},
        max_redirects=0,
    )
    assert refused.status == 403
    marketing.close()

    ops, page = sign_in(browser, site, "ops", start=f"/admin/campaigns/{campaign_id}")
    row = page.locator("tr", has=page.locator("[data-state=active]"))
    row.get_by_role("button", name="Retire…").click()
    message = page.locator("#confirm-message")
    expect(message).to_contain_text(f"This stops campaign email for {people:,} people")
    shot(page, "daily-02-retire-confirmation")
    # Nothing changed yet.
    assert (
        _scalar(site, "SELECT state FROM campaign_versions WHERE id = :v", v=version_id) == "active"
    )
    page.get_by_role("button", name="Stop this campaign's email").click()
    page.wait_for_url(re.compile(r"note=retired"))
    expect(page.locator("#result")).to_have_text("Retired.")
    assert (
        _scalar(site, "SELECT state FROM campaign_versions WHERE id = :v", v=version_id)
        == "retired"
    )
    ops.close()


def _opens(site: Site) -> int:
    return int(json.loads(site.cli("stats", "--json"))["totals"]["unique_opens"])


def test_viewing_an_outbox_message_counts_no_open(browser: Any, site: Site) -> None:
    message_id = _scalar(
        site, "SELECT id FROM outbox WHERE send_id IS NOT NULL ORDER BY id DESC LIMIT 1"
    )
    assert message_id is not None
    db = Database(site.db_url)
    try:
        data = stored_message(db, int(message_id))
    finally:
        db.dispose()
    assert data is not None
    html = next(
        p.get_payload(decode=True)
        for p in message_from_bytes(data).walk()
        if p.get_content_type() == "text/html"
    )
    assert isinstance(html, bytes)
    pixel = re.search(
        rf"{re.escape(site.base)}/o/[A-Za-z0-9]+/[A-Za-z0-9._-]+\.gif", html.decode("utf-8")
    )
    assert pixel, "the stored campaign email has an open pixel"
    before = _opens(site)

    context, page = sign_in(browser, site, "ops", start=f"/admin/outbox/{message_id}")
    expect(page.locator("#untracked-note")).to_be_visible()
    srcdoc = page.locator("iframe.mail").get_attribute("srcdoc") or ""
    assert "/o/" not in srcdoc and f"{site.base}/r/" not in srcdoc
    assert "<a" in srcdoc  # the links are still there, pointing where they lead
    # The staff browser fetching the pixel itself is not recorded either.
    answered = page.request.get(pixel.group(0))
    assert answered.status == 200
    page.reload()
    assert _opens(site) == before
    context.close()

    # The same pixel from someone who is not signed in is an open: the count can move.
    assert (
        httpx.get(
            pixel.group(0),
            headers={
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
            },
        ).status_code
        == 200
    )
    wait_until(
        lambda: _opens(site) == before + 1, timeout=15, message="the reader's open never arrived"
    )


def _version_id(site: Site, campaign_id: str, number: int) -> str:
    return str(
        _scalar(
            site,
            "SELECT id FROM campaign_versions WHERE campaign_id = :c AND number = :n",
            c=campaign_id,
            n=number,
        )
    )


def _version_state(site: Site, version_id: str) -> str:
    return str(_scalar(site, "SELECT state FROM campaign_versions WHERE id = :v", v=version_id))


def test_activating_a_version_that_drops_approved_changes_asks_twice(
    browser: Any, site: Site
) -> None:
    # A campaign of its own (the other tests here edit and retire the library's): a copy of
    # the library under another id, imported (in review), approved and made live as version 1.
    import shutil
    from pathlib import Path

    import campaigns

    folder = site.tmp_path / "imports" / "spasm-copy"
    shutil.copytree(Path(campaigns.__file__).parent / "library" / "spasm-education", folder)
    for file in folder.iterdir():  # its id, and its steps' references to its own steps
        file.write_text(
            file.read_text(encoding="utf-8").replace("spasm-education", "spasm-copy"),
            encoding="utf-8",
        )
    site.cli("campaigns", "import", str(folder.parent))
    campaign_id = "spasm-copy"
    url = f"/admin/campaigns/{campaign_id}"
    v1 = _version_id(site, campaign_id, 1)
    clinician, page = sign_in(browser, site, "clinician", start=url)
    page.locator(f"form[action$='/versions/{v1}/approve'] button.primary").click()
    page.wait_for_url(re.compile(r"note=approved"))
    page.locator(f"form[action$='/versions/{v1}/activate'] button").click()
    page.locator("#confirm").click()
    page.wait_for_url(re.compile(r"note=activated"))

    marketing, mpage = sign_in(browser, site, "marketing", start=url)
    # Version 2 is submitted; version 3, started while it waits, copies the live version 1.
    for note in ("draft", "submitted", "draft", "submitted"):
        if note == "draft":
            mpage.locator("#start-draft").click()
        else:
            mpage.get_by_role("button", name="Submit for review").click()
        mpage.wait_for_url(re.compile(rf"note={note}"))
    marketing.close()
    v2, v3 = _version_id(site, campaign_id, 2), _version_id(site, campaign_id, 3)

    page.goto(f"{site.base}{url}")
    for v in (v2, v3):
        page.locator(f"form[action$='/versions/{v}/approve'] button.primary").click()
        page.wait_for_url(re.compile(r"note=approved"))
    # Version 2 goes live after one confirmation naming the count.
    page.locator(f"form[action$='/versions/{v2}/activate'] button").click()
    expect(page.locator("#confirm-message")).to_contain_text("going through this campaign")
    assert page.locator("#confirm-details").count() == 0
    page.locator("#confirm").click()
    page.wait_for_url(re.compile(r"note=activated"))
    assert _version_state(site, v2) == "active"

    # Version 3 would drop version 2's approved change: said, named, and asked again.
    page.locator(f"form[action$='/versions/{v3}/activate'] button").click()
    expect(page.locator("#confirm-message")).to_contain_text("removes them")
    expect(page.locator("#confirm-details")).to_contain_text("Version 2, approved by")
    expect(page.locator("#confirm")).to_have_text("Activate and drop version 2")
    shot(page, "daily-05-activation-drops-approved-changes")
    assert _version_state(site, v3) == "approved" and _version_state(site, v2) == "active"
    page.locator("#confirm").click()
    page.wait_for_url(re.compile(r"note=activated"))
    assert _version_state(site, v3) == "active" and _version_state(site, v2) == "retired"

    # The dropped version comes back as a new draft, to be reviewed again.
    page.get_by_role("button", name="Restore version 2 as a draft").click()
    page.wait_for_url(re.compile(r"note=restored"))
    v4 = _version_id(site, campaign_id, 4)
    assert _version_state(site, v4) == "draft"
    assert _scalar(site, "SELECT based_on FROM campaign_versions WHERE id = :v", v=v4) == v2
    clinician.close()


def test_a_past_dated_newsletter_is_caught_before_review_and_retimed_after(
    browser: Any, site: Site
) -> None:
    context, page = sign_in(browser, site, "marketing", start="/admin/newsletters/new")
    page.fill("#slug", "past-dated")
    page.fill("#subject", "Our opening hours")
    page.fill("#preheader", "When we are open")
    page.fill("#body", "Hello {{ first_name }},\n\nWe are open on weekdays.\n")
    page.fill("#local_at", "2020-01-07T10:00")
    page.get_by_role("button", name="Create draft").click()
    page.wait_for_url(re.compile(r"/admin/newsletters/[0-9a-f]{32}$"))
    newsletter_url = page.url
    nid = newsletter_url.rsplit("/", 1)[-1]

    def state() -> str:
        return str(_scalar(site, "SELECT state FROM newsletters WHERE id = :n", n=nid))

    page.get_by_role("button", name=re.compile("Ask a clinician")).click()
    expect(page.locator("#form-error")).to_contain_text("has already passed")
    shot(page, "daily-06-newsletter-past-date-refused")
    assert state() == "draft"
    page.goto(newsletter_url)
    page.fill("#local_at", "2030-01-08T10:00")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#result")).to_contain_text("Saved")
    page.get_by_role("button", name=re.compile("Ask a clinician")).click()
    expect(page.locator("#newsletter-state")).to_have_text("in review")
    context.close()

    clinician, cpage = sign_in(browser, site, "clinician", start="/admin/newsletters")
    cpage.goto(newsletter_url)
    cpage.fill("#note", "Fine to send")
    cpage.get_by_role("button", name="Approve").click()
    cpage.wait_for_selector("#schedule")
    clinician.close()

    context, page = sign_in(browser, site, "marketing", start="/admin/newsletters")
    page.goto(newsletter_url)
    page.fill("#retime-at", "2030-01-09T11:30")
    page.get_by_role("button", name="Change the time").click()
    expect(page.locator("#result")).to_contain_text("no new review is needed")
    expect(page.locator("#newsletter-state")).to_have_text("approved")
    assert _scalar(site, "SELECT local_at FROM newsletters WHERE id = :n", n=nid) == (
        "2030-01-09T11:30"
    )
    assert state() == "approved"
    shot(page, "daily-07-newsletter-retimed")
    # Scheduling says how many people and when: the new time, on the same approval.
    page.locator("#schedule").click()
    expect(page.locator("#confirm-message")).to_contain_text("Wednesday 09 January 2030 at 11:30")
    page.locator("#confirm").click()
    expect(page.locator("#newsletter-state")).to_have_text("scheduled")
    context.close()
