"""The console on a phone and without a terminal, in Debian's chromium against a real
`clinicmail serve`: the navigation collapses behind a Menu button on a phone and opens by keyboard; every region that
scrolls is reachable by Tab and named; ops changes the clinic's settings (a bad value is
refused field by field, a good one is saved and used); marketing gets 403 there; a CSV import
shows its progress, a summary and a reject report.

Screenshots go to artifacts/screenshots/ when CLINICMAIL_TEST_SCREENSHOTS=1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Site, console_site, shot, sign_in
from tests.support.cli import CSV_HEADER

ROWS = [
    f"p{i:02d}@example.com,Person{i},{s},Europe/London,yes,,"
    for i, s in enumerate(["lower_back;sciatica", "neck;desk_posture", "mid_back"] * 4)
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with console_site(tmp_path_factory.mktemp("console-daily"), ROWS) as s:
        yield s


def _fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_the_navigation_collapses_on_a_phone_and_opens_by_keyboard(
    browser: Any, site: Site
) -> None:
    context, page = sign_in(browser, site, "ops", width=390, start="/admin/outbox")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.reload()
    toggle = page.locator("#menu-toggle")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    people = page.get_by_role("link", name="People", exact=True)
    expect(people).to_be_hidden()
    header = page.locator("header.top").bounding_box()
    assert header is not None and header["height"] < 80  # one row: brand and the button
    shot(page, "daily-nav-closed-390")
    # keyboard: skip link, then the Menu button; Enter opens it, Tab reaches the links
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "menu-toggle"
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(people).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Home"
    # every link sits inside the dark header (white on dark, never spilling onto the page)
    top = page.locator("header.top").bounding_box()
    for link in page.locator("#console-menu nav a").all():
        box = link.bounding_box()
        assert box is not None and top is not None
        assert box["y"] + box["height"] <= top["y"] + top["height"] + 0.5
        assert box["x"] + box["width"] <= 390
    shot(page, "daily-nav-open-390")
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert page.evaluate("document.activeElement.id") == "menu-toggle"
    assert _fits(page)
    context.close()
    # a laptop's width: no Menu button, the links in the header row
    wide, wpage = sign_in(browser, site, "ops", width=1280, start="/admin/outbox")
    expect(wpage.locator("#menu-toggle")).to_be_hidden()
    expect(wpage.get_by_role("link", name="People", exact=True)).to_be_visible()
    wide.close()
    assert not errors, errors


def test_every_scrolling_region_is_reachable_by_keyboard(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "ops", width=390, start="/admin/ops/audit")
    page.wait_for_function(
        "() => [...document.querySelectorAll('main *')].some(e => e.dataset.scrollRegion)"
    )
    regions = page.evaluate(
        """() => [...document.querySelectorAll('main *')].filter(e => {
            const s = getComputedStyle(e);
            return (/(auto|scroll)/.test(s.overflowX) && e.scrollWidth > e.clientWidth + 1)
                || (/(auto|scroll)/.test(s.overflowY) && e.scrollHeight > e.clientHeight + 1);
        }).map(e => ({tab: e.tabIndex, label: e.getAttribute('aria-label') || '',
                      role: e.getAttribute('role')}))"""
    )
    assert regions, "the audit table should scroll sideways at 390 px"
    for region in regions:
        assert region["tab"] == 0 and region["label"] and region["role"] == "region", region
    # Tab reaches it, and the arrow keys scroll it
    first = page.locator("[data-scroll-region=made]").first
    first.focus()
    before = first.evaluate("e => e.scrollLeft")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "before => document.activeElement.scrollLeft > before", arg=before, timeout=5000
    )
    # at 1280 px the same table fits: no tab stop that does nothing
    page.set_viewport_size({"width": 1280, "height": 900})
    page.wait_for_function("() => !document.querySelector('[data-scroll-region=made]')")
    context.close()


def test_ops_changes_the_clinic_settings(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "ops", start="/admin/ops")
    page.get_by_role("link", name="Clinic settings").click()
    page.wait_for_url(re.compile(r"/admin/ops/clinic$"))
    page.fill("#s-brand_colour", "#ffee00")
    page.fill("#s-send_window", "9 till 5")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-error")).to_be_visible()
    expect(page.locator("#s-brand_colour")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-brand_colour")).to_contain_text("too light")
    expect(page.locator("#e-send_window")).to_be_visible()
    shot(page, "daily-settings-refused-1280")
    page.fill("#s-brand_colour", "#204060")
    page.fill("#s-send_window", "09:00-17:00")
    page.fill("#s-clinic_name", "Harbour Back Clinic")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-saved")).to_contain_text(
        "Saved: Clinic name, Brand colour, Send window."
    )
    expect(page.locator("#s-clinic_name")).to_have_value("Harbour Back Clinic")
    expect(page.locator("[data-setting=clinic_name]")).to_contain_text(
        "Saved by otto@clinic.example"
    )
    page.set_viewport_size({"width": 390, "height": 900})
    assert _fits(page)
    shot(page, "daily-settings-saved-390")
    # the running service uses it: the effective settings say so, and the audit log has it
    page.goto(f"{site.base}/admin/ops/settings")
    expect(page.locator("#settings")).to_contain_text("Harbour Back Clinic")
    page.goto(f"{site.base}/admin/ops/audit?action=settings.change")
    expect(page.locator("main")).to_contain_text("settings.change")
    context.close()
    marketing, mpage = sign_in(browser, site, "marketing", start="/admin")
    answer = mpage.goto(f"{site.base}/admin/ops/clinic")
    assert answer is not None and answer.status == 403
    marketing.close()


def test_import_a_csv_from_the_console(browser: Any, site: Site) -> None:
    rows = [f"new{i:04d}@example.com,New{i},neck,Europe/London,yes,," for i in range(1500)]
    rows += ["broken-address,X,neck,,yes,,", "nope@example.com,N,neck,,no,,"]
    context, page = sign_in(
        browser, site, "marketing", width=390, start="/admin/import", accept_downloads=True
    )
    page.set_input_files(
        "#file",
        files=[
            {
                "name": "new-people.csv",
                "mimeType": "text/csv",
                "buffer": (CSV_HEADER + "".join(r + "\n" for r in rows)).encode(),
            }
        ],
    )
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/admin/import/[^/]+$"))
    expect(page.locator("#import-progress")).to_be_attached()
    page.wait_for_selector("#import-summary", timeout=60_000)
    expect(page.locator("#import-progress")).to_have_attribute("value", "100")
    counts = {
        k: int(page.locator(f"[data-count={k}]").inner_text())
        for k in ("imported", "updated", "unchanged", "rejected")
    }
    assert counts == {"imported": 1500, "updated": 0, "unchanged": 0, "rejected": 2}
    expect(page.locator("#import-rejects")).to_contain_text("no consent")
    assert _fits(page)
    shot(page, "daily-import-390")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the rejected rows (CSV)").click()
    report = info.value.path().read_text(encoding="utf-8").splitlines()
    assert report[0] == "line,email,reason" and len(report) == 3
    context.close()
    # the CLI sees the same people
    listed = site.cli("subscribers", "export", "new0042@example.com")
    assert '"status": "confirmed"' in listed or "confirmed" in listed
