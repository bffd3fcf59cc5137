"""axe-core on every console page, at a phone's width (390 px) and a laptop's (1280 px), in
Debian's chromium against a real `clinicmail serve`: no serious or critical violation.

The pages are found by following the console's own links from the home page as ops (who may
open every page), plus the few reached only by a form (the sign-in page, a new newsletter, an
import's result, the not-found page); the test fails when any page the console routes is left
unvisited, so a new page cannot skip the check. The interactive API docs (``/docs``) are Swagger UI's
own markup, not the console's, and are left out: axe finds upstream colour-contrast and
nested-control faults there that our pages cannot fix. Screenshots of each page at both widths go to
artifacts/screenshots/ when CLINICMAIL_TEST_SCREENSHOTS=1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.axe import blocking
from tests.support.browser import Site, console_site, shot, sign_in
from tests.support.cli import CSV_HEADER

WIDTHS = (390, 1280)
ROWS = [
    f"p{i:02d}@example.com,Person{i},{s},Europe/London,yes,,"
    for i, s in enumerate(["lower_back;sciatica", "neck;desk_posture", "mid_back"] * 8)
]
# Every HTML page the console routes, as a pattern of its path (ids are opaque).
PAGES = {
    "login": r"/admin/login",
    "home": r"/admin",
    "campaigns": r"/admin/campaigns",
    "campaign": r"/admin/campaigns/[^/]+",
    "journey": r"/admin/campaigns/[^/]+/journey",
    "editor": r"/admin/campaigns/[^/]+/versions/[^/]+/files/[^/]+",
    "reviews": r"/admin/reviews",
    "review": r"/admin/reviews/versions/[^/]+",
    "people": r"/admin/subscribers",
    "person": r"/admin/subscribers/[^/]+",
    "erase": r"/admin/subscribers/[^/]+/erase",
    "person-new": r"/admin/subscribers/new",
    "person-edit": r"/admin/subscribers/[^/]+/edit",
    "import": r"/admin/import",
    "import-job": r"/admin/import/[^/]+",
    "newsletters": r"/admin/newsletters",
    "newsletter-new": r"/admin/newsletters/new",
    "newsletter": r"/admin/newsletters/[^/]+",
    "outbox": r"/admin/outbox",
    "outbox-message": r"/admin/outbox/[^/]+",
    "ops-accounts": r"/admin/ops",
    "ops-audit": r"/admin/ops/audit",
    "ops-settings": r"/admin/ops/settings",
    "ops-clinic": r"/admin/ops/clinic",
    "ops-transport": r"/admin/ops/transport",
    "ops-integrations": r"/admin/ops/integrations",
    "not-found": r"/admin/no-such-page",
}


def _refuse_new_campaign(page: Any) -> None:
    page.locator("#new-campaign summary").click()
    page.click("#create-campaign")


def _refuse_delay(page: Any) -> None:
    page.fill("#delay_days", "soon")
    page.click("#save")


# States only a refused form reaches (name, path or None for the editor checked, how, what
# shows it): the errors beside the fields are checked as well.
FORM_STATES = [
    ("campaigns-new-refused", "/admin/campaigns", _refuse_new_campaign, "#e-title"),
    ("editor-settings-refused", None, _refuse_delay, "#e-delay_days"),
]
# Links that are not pages to check: downloads, partials, and what signs out.
NOT_PAGES = re.compile(
    r"(\.pdf|\.csv|/export|/progress|/static/|/logout|/api/|/openapi\.json|/redoc|^/docs)"
)


def _kind(path: str) -> str | None:
    # the most specific pattern first: a literal path beats one with an id in it
    for name, pattern in sorted(PAGES.items(), key=lambda kv: ("[^/]+" in kv[1], -len(kv[1]))):
        if re.fullmatch(pattern, path):
            return name
    return None


def console_links(page: Any, site: Site) -> list[str]:
    """The paths of this site's console pages that the page links to (links and GET forms),
    what a crawl of the console follows next."""
    links = page.eval_on_selector_all(
        "a[href], form[method=get][action]", "els => els.map(e => e.href || e.action)"
    )
    here = urlsplit(site.base).netloc
    return [
        parts.path
        for parts in map(urlsplit, links)
        if parts.netloc == here and not NOT_PAGES.search(parts.path)
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with console_site(tmp_path_factory.mktemp("console-axe"), ROWS) as s:
        yield s


SCROLLERS_REACHABLE = """() => [...document.querySelectorAll("main *")].every((el) => {
  const s = getComputedStyle(el);
  const x = /(auto|scroll)/.test(s.overflowX) && el.scrollWidth > el.clientWidth + 1;
  const y = /(auto|scroll)/.test(s.overflowY) && el.scrollHeight > el.clientHeight + 1;
  return !(x || y) || el.hasAttribute("tabindex");
})"""


def _check(page: Any, name: str, width: int, failures: list[str]) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_load_state("load")
    # nav.js re-checks scrolling regions 150 ms after a resize: wait until every region that
    # scrolls has its tab stop (a condition with a deadline, never a fixed pause).
    page.wait_for_function(SCROLLERS_REACHABLE, timeout=10_000)
    for v in blocking(page):
        failures.append(f"{name} @{width}px: {v['impact']} {v['id']} ({v['help']}): {v['nodes']}")
    shot(page, f"axe-{name}-{width}")


def _forms_only_pages(page: Any, site: Site) -> list[str]:
    """Pages reached only through a form: a new campaign's first email (the step settings
    form with its audience builder), a newsletter draft, an import's result."""
    made = []
    page.goto(f"{site.base}/admin/campaigns")
    page.locator("#new-campaign summary").click()
    page.fill("#new-title", "Axe check")
    page.fill("#new-step", "Welcome")
    page.select_option("#cond_1", "in_group:red_flags")
    page.select_option("#cond_sense_1", "not")
    page.click("#create-campaign")
    page.wait_for_selector("#step-settings")
    made.append(urlsplit(page.url).path)
    page.goto(f"{site.base}/admin/newsletters/new")
    page.fill("#slug", "axe-news")
    page.fill("#subject", "News from the clinic")
    page.fill("#body", "Hello {{ first_name }}, we have news.")
    page.click("#save")
    page.wait_for_url(re.compile(r"/admin/newsletters/(?!new)[^/]+$"))
    made.append(urlsplit(page.url).path)
    page.goto(f"{site.base}/admin/import")
    page.set_input_files(
        "#file",
        files=[
            {
                "name": "more.csv",
                "mimeType": "text/csv",
                "buffer": (CSV_HEADER + "q1@example.com,Q,neck,,yes,,\nbad,,,,no,,\n").encode(),
            }
        ],
    )
    page.get_by_role("button", name="Import").click()
    page.wait_for_selector("#import-summary")
    made.append(urlsplit(page.url).path)
    return made


def test_axe_finds_nothing_serious_on_any_console_page(browser: Any, site: Site) -> None:
    failures: list[str] = []
    signed_out = browser.new_context()
    login = signed_out.new_page()
    login.goto(f"{site.base}/admin/login")
    for width in WIDTHS:
        _check(login, "login", width, failures)
    signed_out.close()

    context, page = sign_in(browser, site, "ops", start="/admin")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    queue = ["/admin", "/admin/no-such-page", *_forms_only_pages(page, site)]
    seen_paths: set[str] = set()
    seen_kinds: dict[str, str] = {}
    while queue:
        path = queue.pop(0)
        kind = _kind(path)
        if path in seen_paths or kind is None or kind in seen_kinds:
            continue
        seen_paths.add(path)
        page.goto(f"{site.base}{path}")
        seen_kinds[kind] = path
        for width in WIDTHS:
            _check(page, kind, width, failures)
        queue.extend(console_links(page, site))
    for state, start, refuse, shown in FORM_STATES:
        page.goto(f"{site.base}{start or seen_kinds['editor']}")
        refuse(page)
        page.wait_for_selector(shown)
        for width in WIDTHS:
            _check(page, state, width, failures)
    context.close()
    missing = sorted(set(PAGES) - set(seen_kinds) - {"login"})
    assert not missing, f"pages never reached by the crawl: {missing}"
    assert not errors, errors
    assert not failures, "\n".join(failures)
