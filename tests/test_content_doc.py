"""docs/content.md shows each patient path's journey as `campaigns journey` computes it; this
fails when the library changes and the document was not regenerated (make content-doc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from campaigns import BUNDLED_LIBRARY
from campaigns.loader import load_catalog
from campaigns.paths import PATHS, journeys_markdown

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "content.md"


def test_the_journeys_in_the_doc_are_current() -> None:
    run = subprocess.run(
        [sys.executable, "scripts/content_doc.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_every_path_is_in_the_doc_with_every_week() -> None:
    catalog, _ = load_catalog(BUNDLED_LIBRARY)
    generated = journeys_markdown(catalog.campaigns["spasm-education"])
    doc = DOC.read_text(encoding="utf-8")
    assert generated in doc
    for path in PATHS:
        section = doc.split(f"### {path.label}\n", 1)[1].split("### ", 1)[0]
        rows = [
            line for line in section.splitlines() if line.startswith("| ") and "---" not in line
        ]
        assert len(rows) - 1 >= 8, path.id  # a header row, then one row per week
        assert f"| {path.id} |" in section  # at least one email written for this path
