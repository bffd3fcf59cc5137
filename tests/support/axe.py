"""axe-core (vendored under tests/vendor/axe-core) run inside a page Chromium has open."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")

_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary),
  }));
}"""


@cache
def _source() -> str:
    return AXE.read_text(encoding="utf-8")


def violations(page: Any) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now. The engine is evaluated through the
    DevTools protocol, which the page's Content-Security-Policy does not govern, so the page
    under test keeps its own policy."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_source())
    found: list[dict[str, Any]] = page.evaluate(_RUN)
    return found


def blocking(page: Any) -> list[dict[str, Any]]:
    """The serious and critical violations only."""
    return [v for v in violations(page) if v["impact"] in BLOCKING]
