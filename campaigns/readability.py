"""Reading grade and word count of an email as a subscriber reads it.

The grade is Flesch-Kincaid: 0.39 × words per sentence + 11.8 × syllables per word − 15.59.
Syllables come from pyphen's hyphenation dictionary (it works offline, unlike textstat's
cmudict download). Hyphenation points undercount syllables ("area" has none), so each word
counts the larger of pyphen's figure and a vowel-group estimate: the grade errs high, never
flatteringly low. Headings and list items count as sentences, as a reader takes them.
"""

from __future__ import annotations

import re
from functools import cache

import pyphen

_DICT = pyphen.Pyphen(lang="en_US")
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
_URL = re.compile(r"\(?https?://\S+\)?|\(?mailto:\S+\)?")


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


def plain(text: str) -> str:
    """The words a reader reads in an email's text part: link targets and brackets dropped."""
    return _URL.sub("", text).replace("[", "").replace("]", "")


def measure(text: str) -> tuple[float, int]:
    """(Flesch-Kincaid grade, word count) of plain text, one paragraph or item per line."""
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
    if n == 0:
        return 0.0, 0
    syl = sum(syllables(w) for w in words)
    grade = 0.39 * n / sentences + 11.8 * syl / n - 15.59
    return round(grade, 1), n
