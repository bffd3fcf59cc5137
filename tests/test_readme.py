"""The README stands on its own: its example file imports as it says, every symptom code is
listed, and it cites nothing outside the repository."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from subscribers.symptoms import SYMPTOMS
from tests.support.cli import CLI

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_lists_every_symptom_code() -> None:
    for s in SYMPTOMS:
        assert f"`{s.code}`" in README, s.code


def test_readme_and_docs_cite_nothing_outside_the_repository() -> None:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for outside in ("CONTRACT", "DESIGN.md", "../shared", "shared/"):
            assert outside not in text, (path.name, outside)
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if not target.startswith(("http://", "https://", "mailto:")):
                assert (path.parent / target).exists(), (path.name, target)


def test_the_example_file_imports_as_the_readme_says(cli: CLI, tmp_path: Path) -> None:
    people = ROOT / "examples" / "people.csv"
    with people.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        assert row["email"].endswith(("@example.org", "@example.com")) or "@" not in row["email"]
    report = tmp_path / "rejects.csv"
    run = cli("subscribers", "import", str(people), "--report", str(report), "--json")
    assert run.code == 0, run.err
    assert run.json() == {"imported": 5, "updated": 0, "unchanged": 0, "rejected": 3}
    reasons = report.read_text(encoding="utf-8")
    for why in ("consent", "invalid email", "unknown symptom code"):
        assert why in reasons
    assert "examples/people.csv" in README
