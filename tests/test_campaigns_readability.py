"""Content quality, measured: every library email reads at school grade 8 or below and has
150-400 words, as the content gate (campaigns/gate.py) demands.

The measure (campaigns/readability.py) is Flesch-Kincaid on the text a subscriber reads (Jinja
filled in, Markdown rendered, footer left out), with syllables that err high.

Print the figures with ``pytest tests/test_campaigns_readability.py -s``.
"""

from __future__ import annotations

import statistics

import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.definitions import Variant
from campaigns.gate import MAX_GRADE, MAX_WORDS, MIN_WORDS, reading_text
from campaigns.loader import load_catalog
from campaigns.readability import measure, syllables


def test_measure_on_known_text() -> None:
    assert measure("The cat sat on the mat.") == (round(0.39 * 6 + 11.8 * 1 - 15.59, 1), 6)
    grade, n = measure(
        "Rehabilitation of intervertebral discs necessitates considerable physiotherapeutic "
        "intervention."
    )
    assert n == 8 and grade > 16
    expected = {"make": 1, "muscle": 2, "stretches": 2, "shoulders": 2, "rehabilitation": 6}
    assert {w: syllables(w) for w in expected} == expected
    assert syllables("area") >= 2  # pyphen alone says 1
    assert measure("") == (0.0, 0)


def _library() -> list[Variant]:
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    return [v for c in catalog for s in c.steps for v in (s.default, *s.variants)]


@pytest.fixture(scope="module")
def figures() -> dict[str, tuple[float, int]]:
    return {v.file: measure(reading_text(v.subject, v.preheader, v.body)) for v in _library()}


def test_every_library_email_is_plain_and_the_right_length(
    figures: dict[str, tuple[float, int]],
) -> None:
    grades = [g for g, _ in figures.values()]
    counts = [n for _, n in figures.values()]
    print(
        f"\n{len(figures)} emails: grade min {min(grades)} max {max(grades)} "
        f"mean {statistics.mean(grades):.1f}; words min {min(counts)} max {max(counts)} "
        f"mean {statistics.mean(counts):.0f}"
    )
    for file, (grade, n) in sorted(figures.items()):
        print(f"  {grade:5.1f} {n:4d}  {file}")
    too_hard = {f: g for f, (g, _) in figures.items() if g > MAX_GRADE}
    wrong_length = {f: n for f, (_, n) in figures.items() if not MIN_WORDS <= n <= MAX_WORDS}
    assert not too_hard, f"reading grade above {MAX_GRADE}: {too_hard}"
    assert not wrong_length, f"outside {MIN_WORDS}-{MAX_WORDS} words: {wrong_length}"
    # 10 steps + 48 variants: the 50 reviewed in December 2026, plus the middle back's week 1,
    # the chronic finale, three emails after a lifting strain and three for the lower back.
    assert len(figures) == 58
