"""Word shingles, to prove library text is freshly written rather than copied from a source.

A shingle is a run of ``n`` consecutive words after normalising: lower case, curly quotes made
straight, every character other than a letter, digit or apostrophe a word break, apostrophes
then dropped ("don't" and "dont" match). Only a hash of each shingle is kept, so a repository
can hold the fingerprints of an article without holding its text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

SHINGLE_WORDS = 8
_SPLIT = re.compile(r"[^a-z0-9']+")


def words(text: str) -> list[str]:
    text = text.lower().replace("’", "'").replace("‘", "'")
    return [w for w in (t.replace("'", "") for t in _SPLIT.split(text)) if w]


def shingle_hash(run: Iterable[str]) -> str:
    """First 16 hex digits of SHA-256 of the words joined by single spaces."""
    return hashlib.sha256(" ".join(run).encode()).hexdigest()[:16]


def shingles(text: str, n: int = SHINGLE_WORDS) -> dict[str, str]:
    """Each ``n``-word run of ``text``, keyed by its hash (the run itself as the value)."""
    ws = words(text)
    return {shingle_hash(ws[i : i + n]): " ".join(ws[i : i + n]) for i in range(len(ws) - n + 1)}
