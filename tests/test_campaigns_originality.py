"""Every library and system email is freshly written: no run of eight words is shared with a
source article. The repository holds only hashes of the articles' 8-word shingles
(tests/fixtures/seed_shingles.txt, made by scripts/seed_shingles.py), never their text."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.gate import reading_text
from campaigns.loader import load_catalog
from campaigns.originality import shingle_hash, shingles, words
from templates.system import OPS_EMAILS, SYSTEM_EMAILS, system_content

FIXTURE = Path(__file__).parent / "fixtures" / "seed_shingles.txt"


@pytest.fixture(scope="module")
def seed_hashes() -> frozenset[str]:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _emails() -> dict[str, tuple[str, str, str]]:
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    out = {
        v.file: (v.subject, v.preheader, v.body)
        for c in catalog
        for s in c.steps
        for v in (s.default, *s.variants)
    }
    for name in (*SYSTEM_EMAILS, *OPS_EMAILS):
        content = system_content(name)
        out[content.name] = (content.subject, content.preheader, content.body)
    return out


def test_normalising_ignores_case_punctuation_and_apostrophes() -> None:
    assert words("Don’t STOP, (now)... it's-fine") == ["dont", "stop", "now", "its", "fine"]
    a = shingles("One two three four five six seven eight nine")
    assert len(a) == 2
    b = shingles("one, TWO; three — four five six seven eight!")
    assert set(b) < set(a)
    assert shingle_hash(["one", "two"]) != shingle_hash(["one two", ""])


def test_fixture_holds_hashes_only(seed_hashes: frozenset[str]) -> None:
    assert len(seed_hashes) > 1000  # five articles' worth
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in seed_hashes)


def test_a_copied_run_would_be_caught(seed_hashes: frozenset[str]) -> None:
    """The check itself: text whose shingles are in the fixture is reported."""
    planted = "this sentence was planted here to prove the check works"
    fixture = seed_hashes | set(shingles(planted))
    assert set(shingles(f"Hello. {planted.upper()}!")) & fixture
    assert not set(shingles("Hello. " + planted)) & seed_hashes


def test_no_email_shares_eight_words_with_a_source_article(
    seed_hashes: frozenset[str],
) -> None:
    copied: dict[str, list[str]] = {}
    emails = _emails()
    assert len(emails) >= 48
    for name, (subject, preheader, body) in emails.items():
        texts = [subject, preheader, body]
        if not name.startswith("system/"):
            texts.append(reading_text(subject, preheader, body))
        for text in texts:
            runs = [run for h, run in shingles(text).items() if h in seed_hashes]
            if runs:
                copied.setdefault(name, []).extend(runs)
    assert not copied, f"8-word runs shared with a source article: {copied}"
