"""Content quality, measured: every library email reads at school grade 8 or below and stays
under 400 words.

The grade is Flesch-Kincaid: 0.39 × words per sentence + 11.8 × syllables per word − 15.59,
on the text a subscriber reads (Jinja filled in, Markdown rendered, footer left out).
Syllables come from pyphen's hyphenation dictionary, as textstat did before it switched to
NLTK's cmudict (which it downloads at run time and so fails offline). Hyphenation points
undercount syllables ("area" has none), so each word counts the larger of pyphen's figure and
a vowel-group estimate: the grade errs high, never flatteringly low.

Print the figures with ``pytest tests/test_campaigns_readability.py -s``.
"""

from __future__ import annotations

import re
import statistics
from functools import cache

import pyphen
import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.definitions import Variant
from campaigns.loader import DEMO_CLINIC, load_catalog
from templates import Content, Renderer, fill

MAX_GRADE = 8.0
MAX_WORDS = 400

_DICT = pyphen.Pyphen(lang="en_US")
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
_URL = re.compile(r"\(?https?://\S+\)?")


@cache
def syllables(word: str) -> int:
    w = word.lower().replace("’", "").replace("'", "")
    if w.isdigit():
        return len(w)  # close enough for the odd number in the text
    vowels = len(re.findall(r"[aeiouy]+", w))
    if w.endswith("e") and not re.search(r"[^aeiouy]le$", w) and vowels > 1:
        vowels -= 1  # silent final e: "make"
    elif re.search(r"[^aeiouy]e[sd]$", w) and not re.search(r"(ch|sh|s|x|z|t|d)e[sd]$", w):
        vowels -= vowels > 1  # silent e before s/d: "makes", "braced"
    return max(len(_DICT.positions(w)) + 1, vowels, 1)


def reading_text(renderer: Renderer, variant: Variant) -> str:
    rendered = renderer.render(
        Content(variant.subject, variant.preheader, variant.body, variant.file),
        reason="r",
        list_name="l",
    )
    _, _, text = fill(rendered, {"first_name": "Sam", "unsubscribe_url": "", "preferences_url": ""})
    body = text.split("\n\n--\n", 1)[0]
    return _URL.sub("", body).replace("[", "").replace("]", "")


def measure(text: str) -> tuple[float, int]:
    """(Flesch-Kincaid grade, word count). Headings and list items count as sentences."""
    sentences = 0
    words: list[str] = []
    for line in text.splitlines():
        line = line.strip().lstrip("*").strip()
        if not line:
            continue
        found = _WORD.findall(line)
        if not found:
            continue
        words += found
        ends = len(re.findall(r"[.!?]+(?=\s|$|[\"”’)])", line))
        sentences += ends + (0 if re.search(r"[.!?][\"”’)]?$", line) else 1)
    n = len(words)
    syl = sum(syllables(w) for w in words)
    grade = 0.39 * n / sentences + 11.8 * syl / n - 15.59
    return round(grade, 1), n


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


def _library() -> list[Variant]:
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    return [v for c in catalog for s in c.steps for v in (s.default, *s.variants)]


@pytest.fixture(scope="module")
def figures() -> dict[str, tuple[float, int]]:
    renderer = Renderer(DEMO_CLINIC)
    return {v.file: measure(reading_text(renderer, v)) for v in _library()}


def test_every_library_email_is_plain_and_short(figures: dict[str, tuple[float, int]]) -> None:
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
    too_long = {f: n for f, (_, n) in figures.items() if n >= MAX_WORDS}
    assert not too_hard, f"reading grade above {MAX_GRADE}: {too_hard}"
    assert not too_long, f"{MAX_WORDS} words or more: {too_long}"
    assert len(figures) == 28  # 13 steps + 13 symptom variants + 2 engagement variants
