"""Full-page screenshots of every console page at a laptop's width (1280 px) and a phone's
(390 px), as each role sees it, for a person to look at (a review, an issue's closing note).

    PYTHONPATH=. python scripts/console_screenshots.py [FOLDER]

It starts `clinicmail serve` on a seeded temporary SQLite database the way the browser tests
do (tests/support/browser.py: a real server, Debian's chromium through Playwright), signs in as
marketing, clinician and ops in turn, follows the console's own links from the home page (one
page of each kind, the kinds the axe test lists), and writes
``FOLDER/console-<role>-<page>-<width>.png`` (default folder: artifacts/screenshots/, whose
console-*.png are git-ignored). The files written are printed, one a line. Needs the dev
dependencies (Playwright) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file: the tests' support code is imported from here
    sys.path.insert(0, str(ROOT))

from tests.support.browser import HEADLESS_CHROMIUM, Site, console_site, sign_in  # noqa: E402
from tests.test_console_axe_browser import (  # noqa: E402
    ROWS,
    SCROLLERS_REACHABLE,
    WIDTHS,
    _forms_only_pages,
    _kind,
    console_links,
)

ROLES = ("marketing", "clinician", "ops")
DEFAULT = ROOT / "artifacts" / "screenshots"


def _shoot(page: Any, folder: Path, name: str) -> list[Path]:
    written = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_load_state("load")
        # nav.js settles the layout after a resize; wait for it (a condition, never a pause)
        page.wait_for_function(SCROLLERS_REACHABLE, timeout=10_000)
        path = folder / f"console-{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        written.append(path)
    return written


def _crawl(page: Any, site: Site, folder: Path, role: str, first: list[str]) -> list[Path]:
    """One page of each kind this role's links reach, starting at the home page."""
    written: list[Path] = []
    queue = ["/admin", "/admin/no-such-page", *first]
    seen: set[str] = set()
    while queue:
        path = queue.pop(0)
        kind = _kind(path)
        if kind is None or kind in seen:
            continue
        response = page.goto(f"{site.base}{path}")
        if response is not None and response.status == 403:
            continue  # not this role's page
        seen.add(kind)
        written += _shoot(page, folder, f"{role}-{kind}")
        queue.extend(console_links(page, site))
    return written


def take(folder: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with (
        tempfile.TemporaryDirectory(prefix="console-shots-") as tmp,
        console_site(Path(tmp), ROWS) as site,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=HEADLESS_CHROMIUM, args=["--no-sandbox"])
        try:
            signed_out = browser.new_context()
            login = signed_out.new_page()
            login.goto(f"{site.base}/admin/login")
            written += _shoot(login, folder, "signed-out-login")
            signed_out.close()
            made: list[str] = []
            for role in ("ops", *[r for r in ROLES if r != "ops"]):
                context, page = sign_in(browser, site, role, start="/admin")
                if role == "ops":  # the pages only a form reaches, made once
                    made = _forms_only_pages(page, site)
                written += _crawl(page, site, folder, role, made)
                context.close()
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    args = parser.parse_args(argv)
    if not Path(HEADLESS_CHROMIUM).exists():
        print(
            f"no browser at {HEADLESS_CHROMIUM}: install Debian's chromium-headless-shell",
            file=sys.stderr,
        )
        return 1
    for path in take(args.folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
