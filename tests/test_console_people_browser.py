"""People at clinic scale, in a real browser (Debian's chromium driven by Playwright) against a
real `clinicmail serve`: 10,000 people imported in bulk, paged by cursor to the 10,000th, and
a search whose results survive opening a person and going Back, with no address in the URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Site, shot, sign_in

PEOPLE = 10_000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("people")
    s = Site(tmp_path)
    s.init(staff=True)
    csv = tmp_path / "people.csv"
    # every fourth person without a spreading symptom (sciatica), for the group filter
    symptoms = ("lower_back", "lower_back;sciatica", "lower_back;sciatica", "lower_back;sciatica")
    csv.write_text(
        "email,first_name,symptoms,timezone,consent,consent_at,source\n"
        + "".join(
            f"p{i:05d}@example.com,P{i},{symptoms[i % 4]},Europe/London,yes,,\n"
            for i in range(PEOPLE)
        ),
        encoding="utf-8",
    )
    s.cli("subscribers", "import", str(csv))  # the domain's bulk import, not 10,000 requests
    with s.serving():
        yield s


def test_paging_reaches_the_ten_thousandth_person(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "marketing", start="/admin/subscribers")
    try:
        expect(page.locator("#found-count")).to_contain_text(f"{PEOPLE} people found")
        page.select_option("#size", "500")  # the filter form answers in place (htmx)
        page.wait_for_url(re.compile(r"size=500"))
        expect(page.locator("#results tbody tr")).to_have_count(500)
        pages = 1
        while page.locator("#next-page").count():
            href = page.locator("#next-page").get_attribute("href")
            assert href and re.search(r"after=[0-9a-f]{32}", href)
            page.locator("#next-page").click()
            page.wait_for_url(site.base + href)
            pages += 1
            assert pages <= PEOPLE // 500, "more pages than people"
            assert "@" not in page.url
        assert pages == PEOPLE // 500
        rows = page.locator("#results tbody tr")
        expect(rows).to_have_count(500)
        expect(rows.last).to_contain_text("p00000@example.com")  # the 10,000th, newest first
        expect(rows.first).to_contain_text("p00499@example.com")
        shot(page, "people-last-page-1280")
        page.locator("#first-page").click()
        expect(page.locator("#results tbody tr").first).to_contain_text("p09999@example.com")
    finally:
        context.close()


def test_back_after_opening_a_person_keeps_the_search_and_filter(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "marketing", start="/admin/subscribers")
    try:
        page.select_option("#group", "spreading")
        page.wait_for_url(re.compile(r"group=spreading"))
        page.fill("#q", "p0999")
        page.wait_for_url(re.compile(r"search=[A-Za-z0-9_-]{20,}"))
        # p09990..p09999, less the two without sciatica (p09992, p09996)
        expect(page.locator("#found-count")).to_contain_text("8 people found")
        searched = page.url
        assert "p0999" not in searched and "example.com" not in searched
        page.locator("#results tbody a", has_text="p09993@example.com").click()
        page.wait_for_url(re.compile(r"/admin/subscribers/[0-9a-f]{32}$"))
        expect(page.locator("h1")).to_be_visible()
        page.go_back()
        page.wait_for_url(searched)
        expect(page.locator("#q")).to_have_value("p0999")
        expect(page.locator("#group")).to_have_value("spreading")
        expect(page.locator("#found-count")).to_contain_text("8 people found")
        expect(page.locator("#results")).not_to_contain_text("p09992@example.com")
        # a bookmark of the same address shows the same search, in a fresh page
        fresh = context.new_page()
        fresh.goto(searched)
        expect(fresh.locator("#found-count")).to_contain_text("8 people found")
        expect(fresh.locator("#q")).to_have_value("p0999")
        shot(fresh, "people-search-1280")
    finally:
        context.close()
