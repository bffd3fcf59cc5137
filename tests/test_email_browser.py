"""A campaign email as a reader sees it, in a real browser (Debian's chromium via Playwright),
light and dark: the headline, the section headings and the booking button are visible and
readable (WCAG contrast of 4.5 or more against what is behind them)."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.loader import load_catalog
from campaigns.rendering import render_variant
from templates import Renderer, fill
from tests.support.clinic import CLINIC

# Reads the colour an element's text is drawn in and the first opaque background behind it.
_COLOURS = """(sel) => {
  const el = document.querySelector(sel);
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  let bg = null;
  for (let n = el; n; n = n.parentElement) {
    const c = rgb(getComputedStyle(n).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) { bg = c.slice(0, 3); break; }
  }
  const box = el.getBoundingClientRect();
  return {fg: rgb(getComputedStyle(el).color).slice(0, 3), bg: bg || [255, 255, 255],
          visible: box.width > 0 && box.height > 0};
}"""


def _luminance(rgb: list[float]) -> float:
    def channel(c: float) -> float:
        x = c / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_headline_sections_and_button_read_well(browser: Any, scheme: str) -> None:
    catalog, _ = load_catalog(BUNDLED_LIBRARY)
    campaign = catalog.campaigns["spasm-education"]
    rendered = render_variant(Renderer(CLINIC), campaign, campaign.steps[0].default)
    _, page_html, _ = fill(
        rendered,
        {"first_name": "Sam", "unsubscribe_url": "https://u", "preferences_url": "https://p"},
    )
    page = browser.new_page(color_scheme=scheme)
    try:
        page.set_content(page_html)
        assert page.locator("h1").inner_text() == "Welcome, and the signs that need help fast"
        assert page.locator("h2").first.inner_text() == "When to get help fast"
        for selector in ("h1", "h2", "a.button", ".content p"):
            seen = page.evaluate(_COLOURS, selector)
            assert seen["visible"], (scheme, selector)
            ratio = contrast(seen["fg"], seen["bg"])
            assert ratio >= 4.5, (scheme, selector, seen, round(ratio, 2))
        assert page.locator("a.button").get_attribute("href") == CLINIC.booking_url
    finally:
        page.close()
