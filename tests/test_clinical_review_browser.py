"""The clinical review in a real browser (Debian's chromium driven by Playwright) against a real
`clinicmail serve`: marketing edits step 2 and a clinician edits step 3; a save from a stale
page is refused with the other change shown; a newsletter waits in the same queue; the
clinician who edited cannot approve; another clinician sees both changes as tracked changes on
the review screen and approves. Screenshots of the review screen and the sign-off pack go to
artifacts/screenshots/ when CLINICMAIL_TEST_SCREENSHOTS=1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Site, shot, sign_in
from tests.support.console import PASSWORD, STAFF
from tests.support.newsletter import news_files

CID = "spasm-education"
CORA = "cora@clinic.example"


@pytest.fixture
def review_site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    s.init(staff=True)
    s.cli("users", "add", CORA, "--role", "clinician", stdin=PASSWORD + "\n")
    with s.serving():
        yield s


def _edit(page: Any, site: Site, version_id: str, name: str, field: str, change: Any) -> None:
    page.goto(f"{site.base}/admin/campaigns/{CID}/versions/{version_id}/files/{name}")
    page.wait_for_selector("#preview-subject")
    page.fill(f"#{field}", change(page.locator(f"#{field}").input_value()))
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"saved=1"))


def test_review_walk_in_a_browser(browser: Any, review_site: Site, tmp_path: Path) -> None:
    site = review_site
    marketing, page = sign_in(browser, site, "marketing")
    page.goto(f"{site.base}/admin/campaigns/{CID}")
    page.get_by_role("button", name="Start a draft to make changes").click()
    href = page.locator("a[href*='/versions/'][href$='.md']").first.get_attribute("href")
    version_id = href.split("/versions/")[1].split("/")[0]
    step2 = (
        f"{site.base}/admin/campaigns/{CID}/versions/{version_id}/files/02-the-first-few-days.md"
    )

    # A second tab opened now goes stale when the first one saves.
    stale = marketing.new_page()
    stale.goto(step2)
    stale.wait_for_selector("#preview-subject")
    _edit(
        page,
        site,
        version_id,
        "02-the-first-few-days.md",
        "subject",
        lambda _: "Your first days with a stiff back, {{ first_name }}",
    )
    stale.fill("#body", stale.locator("#body").input_value() + "\nA late sentence.\n")
    stale.get_by_role("button", name="Save draft").click()
    expect(stale.get_by_text("someone else saved this version")).to_be_visible()
    expect(stale.locator("#theirs")).to_contain_text("Your first days with a stiff back")
    expect(stale.locator("#mine")).to_contain_text("A late sentence.")
    shot(stale, "signoff-01-stale-save-refused")

    cleo, cpage = sign_in(browser, site, "clinician")
    _edit(
        cpage,
        site,
        version_id,
        "03-hurt-is-not-harm.md",
        "body",
        lambda body: body.replace("\n", "\nMoving gently is safe and helps.\n", 1),
    )
    page.goto(f"{site.base}/admin/campaigns/{CID}")
    page.get_by_role("button", name="Submit for review").click()
    page.wait_for_url(re.compile(r"note=submitted"))

    # A newsletter from the command line waits in the same queue.
    site.cli("campaigns", "broadcast", str(news_files(tmp_path)), "--at", "2027-01-05 10:00")

    cpage.goto(f"{site.base}/admin/reviews")
    queue = cpage.locator("#review-queue")
    expect(queue.get_by_text("spasm-education, version 2")).to_be_visible()
    expect(queue.get_by_text("Newsletter: Holiday opening hours")).to_be_visible()
    assert queue.get_by_text("version 1").count() == 0
    queue.get_by_text("spasm-education, version 2").click()
    expect(cpage.locator("#changed-count")).to_have_text("2")
    expect(cpage.get_by_text("You edited this version")).to_be_visible()
    assert cpage.locator("#approve").count() == 0
    token = cpage.locator("input[name=csrf_token]").first.get_attribute("value")
    own = cpage.request.post(
        f"{site.base}/admin/campaigns/{CID}/versions/{version_id}/approve",
        form={"csrf_token": token},
        max_redirects=0,
    )
    assert own.status == 403

    cora = browser.new_context(viewport={"width": 1280, "height": 900})
    rpage = cora.new_page()
    rpage.goto(f"{site.base}/admin/reviews/versions/{version_id}")
    rpage.fill("#email", CORA)
    rpage.fill("#password", PASSWORD)
    rpage.get_by_role("button", name="Sign in").click()
    rpage.goto(f"{site.base}/admin/reviews/versions/{version_id}")
    changed = rpage.locator("article.review-email").first
    expect(changed.locator("ins", has_text="stiff back")).to_be_visible()
    expect(changed.locator("del").first).to_be_visible()
    expect(rpage.locator("article.review-email ins", has_text="Moving gently")).to_be_visible()
    shot(rpage, "signoff-02-review-screen")
    rpage.fill("#note", "Both changes match our advice")
    rpage.get_by_role("button", name="Approve").click()
    rpage.wait_for_url(re.compile(r"note=approved"))
    expect(rpage.locator("[data-state=approved]")).to_be_visible()

    # The sign-off pack, as printed (its HTML), for a person to look at.
    pack = tmp_path / "pack.html"
    site.cli("campaigns", "signoff-pack", CID, "--out", str(pack), "--html")
    rpage.goto(pack.as_uri())
    expect(rpage.get_by_text("Every email as sent")).to_be_visible()
    shot(rpage, "signoff-03-pack")
    for context in (marketing, cleo, cora):
        context.close()
    assert STAFF["clinician"] != CORA
