"""The staff console in a real browser (Debian's chromium driven by Playwright) against a real
`clinicmail serve`: marketing signs in, edits a step and sees the live preview change, breaks
the template and sees the inline message, submits for review; marketing cannot approve (no
button, and the POST is refused); a clinician approves; the version is activated.

Screenshots (at 1280 and 768 px) go to artifacts/screenshots/ when CLINICMAIL_TEST_SCREENSHOTS=1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Site, shot, sign_in, unlabelled
from tests.support.console import STAFF

CID = "spasm-education"


@pytest.fixture
def console_site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    s.init(staff=True)
    with s.serving():
        yield s


def test_author_review_and_activate_in_a_browser(browser: Any, console_site: Site) -> None:
    site = console_site
    # The sign-in form: labelled fields, a wrong password never signs in.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{site.base}/admin/login")
    assert unlabelled(page) == 0
    page.fill("#email", STAFF["marketing"])
    page.fill("#password", "not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("[role=alert]")).to_be_visible()
    assert "/admin/login" in page.url
    shot(page, "01-login-failed")
    context.close()

    marketing, page = sign_in(browser, site, "marketing")
    expect(page.get_by_text("Not yet reviewed by a clinician at your clinic")).to_be_visible()
    shot(page, "02-campaigns-1280")
    page.get_by_role("link", name=re.compile("Spasm|spasm|back", re.I)).first.click()
    page.get_by_role("button", name="Start a draft to make changes").click()
    page.locator("a[href$='/files/02-the-first-few-days.md']").first.click()
    page.wait_for_selector("#preview-subject")
    assert unlabelled(page) == 0

    # Live preview follows the typing (htmx), for a persona with a first name.
    page.fill("#persona_first_name", "Priya")
    page.fill("#subject", "Your first few days, {{ first_name }}")
    page.wait_for_function(  # a function: the CSP forbids eval of a string
        "() => document.querySelector('#preview-subject')?.textContent.includes('Your first few days, Priya')"
    )
    page.locator("input[name=width][value=phone]").check()
    page.wait_for_selector("iframe.preview-frame.phone")
    shot(page, "03-editor-live-preview-1280")

    # A broken template shows an inline message, in words, as you type.
    body = page.locator("#body").input_value()
    page.fill("#body", body + "\n{% if %}\n")
    page.wait_for_selector("[data-finding=error]")
    assert "line" in page.locator("[data-finding=error]").first.inner_text()
    shot(page, "04-editor-inline-error")
    page.fill("#body", body)
    page.wait_for_selector("[data-finding=none]")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"saved=1"))

    page.get_by_role("link", name="← Back to the campaign").click()
    page.get_by_role("button", name="Submit for review").click()
    page.wait_for_url(re.compile(r"note=submitted"))
    expect(page.get_by_text("Waiting for a clinician's review")).to_be_visible()
    assert page.get_by_role("button", name="Approve").count() == 0
    # Marketing's approve POST, with a valid session and CSRF token, is still refused.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    action = page.locator("form[action$='/submit'], form[action$='/activate']").count()
    assert action == 0
    href = page.locator("a[href*='/versions/'][href$='.md']").first.get_attribute("href")
    version_id = href.split("/versions/")[1].split("/")[0]
    refused = page.request.post(
        f"{site.base}/admin/campaigns/{CID}/versions/{version_id}/approve",
        form={"csrf_token": token, "note": "looks fine"},
        max_redirects=0,
    )
    assert refused.status == 403
    shot(page, "05-marketing-waits-for-review")

    # Tablet width stays usable: nothing overflows sideways.
    tablet, tpage = sign_in(browser, site, "marketing", width=768)
    tpage.goto(
        f"{site.base}/admin/campaigns/{CID}/versions/{version_id}/files/02-the-first-few-days.md"
    )
    tpage.wait_for_selector("#preview-subject")
    assert tpage.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(tpage, "06-editor-768")
    tablet.close()

    clinician, cpage = sign_in(browser, site, "clinician")
    cpage.goto(f"{site.base}/admin/reviews")
    expect(cpage.get_by_text("version 2").first).to_be_visible()
    cpage.goto(f"{site.base}/admin/campaigns/{CID}")
    cpage.fill(f"#note-{version_id}", "Checked against our clinical guidance")
    cpage.get_by_role("button", name="Approve").click()
    cpage.wait_for_url(re.compile(r"note=approved"))
    shot(cpage, "07-clinician-approved")
    cpage.get_by_role("button", name="Activate…").click()
    expect(cpage.locator("#confirm-message")).to_contain_text("going through this campaign")
    assert cpage.locator("[data-state=active]").count() == 0  # nothing changed yet
    cpage.locator("#confirm").click()
    cpage.wait_for_url(re.compile(r"note=activated"))
    assert cpage.locator("[data-state=active]").count() == 1
    assert cpage.get_by_text("Not yet reviewed by a clinician at your clinic").count() == 0
    shot(cpage, "08-activated")
    clinician.close()

    # The service now previews the activated version.
    out = site.cli("campaigns", "preview", CID, "the-first-few-days", "--symptoms", "lower_back")
    assert "Subject: Your first few days, there" in out
    marketing.close()
