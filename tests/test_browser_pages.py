"""The hosted pages in a real browser (Debian's full chromium, the browser patients use, driven
by Playwright; the console's tests use its headless build) against a real `clinicmail serve`:
the signup form's red-flag warning appears at once, the zone fills itself, a signup confirms
through the emailed link's button and unsubscribe needs the button (GET changes nothing),
urgent-care advice shows after a red-flag signup, and the form fits a 390 px phone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import FULL_CHROMIUM, Site, launch, unlabelled


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The full chromium, not its headless build: these are the pages patients open."""
    yield from launch(FULL_CHROMIUM, "chromium")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    # One site for the module: each test signs up its own address, and reads only its own mail.
    s = Site(tmp_path_factory.mktemp("pages"))
    s.init()
    with s.serving():
        yield s


def test_red_flag_warning_shows_at_once_and_zone_fills_itself(browser: Any, site: Site) -> None:
    context = browser.new_context(timezone_id="America/New_York")
    page = context.new_page()
    page.goto(f"{site.base}/signup")
    urgent = page.locator("#urgent")
    expect(urgent).to_be_hidden()
    assert page.locator("#timezone").input_value() == "America/New_York"
    # every visible form control has a label a screen reader can announce
    assert unlabelled(page) == 0
    box = page.locator("input[value=red_flag_bladder_bowel]")
    box.check()
    expect(urgent).to_be_visible()
    assert urgent.get_attribute("role") == "alert"
    assert "urgent" in urgent.inner_text().lower() or "emergency" in urgent.inner_text().lower()
    box.uncheck()
    expect(urgent).to_be_hidden()
    context.close()


def test_signup_confirm_and_unsubscribe_in_a_browser(browser: Any, site: Site) -> None:
    context = browser.new_context(timezone_id="Europe/London")
    page = context.new_page()
    page.goto(f"{site.base}/signup")
    page.locator("#submit, button[type=submit]").first.click()  # nothing filled in
    expect(page.locator("[role=alert], .error-summary").first).to_be_visible()

    page.fill("#email", "Ann.Lee@Example.com")
    page.fill("#first_name", "Ann")
    page.locator("input[value=lower_back]").check()
    page.locator("input[value=sciatica]").check()
    page.locator("#consent").check()
    page.locator("#health_consent").check()
    page.locator("button[type=submit]").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    assert tuple(site.person("ann.lee@example.com")) == ("unconfirmed", "Europe/London")

    site.cli("tick")  # sends the confirmation email (system email: any hour)
    page.goto(site.link_in_latest("confirm", to="ann.lee@example.com"))
    assert site.person("ann.lee@example.com").status == "unconfirmed"  # GET changes nothing
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", name="Thank you, you're subscribed")).to_be_visible()
    assert site.person("ann.lee@example.com").status == "confirmed"

    site.cli("tick")  # the first weekly email (the test window is open all day)
    unsubscribe = site.link_in_latest("unsubscribe", to="ann.lee@example.com")
    page.goto(unsubscribe)
    assert site.person("ann.lee@example.com").status == "confirmed"  # GET changes nothing
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert site.person("ann.lee@example.com").status == "unsubscribed"
    context.close()


def test_red_flag_signup_shows_urgent_advice_after_submit(browser: Any, site: Site) -> None:
    context = browser.new_context(timezone_id="Europe/London")
    page = context.new_page()
    page.goto(f"{site.base}/signup")
    page.fill("#email", "rf@example.com")
    page.locator("input[value=red_flag_leg_weakness]").check()
    page.locator("#consent").check()
    page.locator("#health_consent").check()
    page.locator("button[type=submit]").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    advice = page.get_by_role("alert")
    expect(advice).to_be_visible()
    assert "urgent medical care" in advice.inner_text()
    # the whole warning-signs table, the same for every red flag: never only what was ticked
    text = advice.inner_text().lower()
    assert "bladder" in text and "fever" in text and "chest pain" in text
    context.close()


@pytest.mark.parametrize("path", ["/signup", "/"])
def test_pages_fit_a_390px_phone(browser: Any, site: Site, path: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3)
    page = context.new_page()
    page.goto(f"{site.base}{path}")
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths  # no horizontal scroll
    if path == "/signup":  # and after a failed submit, with every error shown
        page.locator("button[type=submit]").click()
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], widths
    context.close()
