"""Tracked changes between two texts, as a reviewer reads them: words taken out struck through
(``<del>``), words put in underlined (``<ins>``), the rest as it was. Word-level, from the
standard library's sequence matcher (difflib), on the text exactly as the email is sent."""

from __future__ import annotations

import difflib
import re

from markupsafe import Markup, escape

_TOKENS = re.compile(r"\s+|\S+\s*")


def redline(before: str, after: str) -> Markup:
    """``after`` with the changes from ``before`` marked (safe HTML)."""
    old, new = _TOKENS.findall(before), _TOKENS.findall(after)
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(str(escape("".join(new[j1:j2]))))
            continue
        if op in ("delete", "replace"):
            out.append(f"<del>{escape(''.join(old[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{escape(''.join(new[j1:j2]))}</ins>")
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped
