"""What may be written into an email header: checked where the text is authored (a step's or a
newsletter's subject and preheader, a subscriber's first name), never first at send time.

A header field is one line of text. A line break in it would end the header (or start a new
one: header injection), and the email libraries refuse it when the message is built, which is
too late: the send would fail for every recipient, tick after tick. Other control characters
(C0 and C1: a bell, an escape …) and the Unicode line and paragraph separators have no place in
a subject or a name either. Invisible formatting characters (zero-width joiners, which some
scripts and emoji need) are allowed.
"""

from __future__ import annotations

import unicodedata

# Lengths past which a field is refused (in characters): a subject longer than 150 is cut by
# every mail client anyway; a preheader is the inbox's one-line preview.
SUBJECT_MAX = 150
PREHEADER_MAX = 200
NAME_MAX = 50

_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def header_problem(value: str, *, max_length: int) -> str | None:
    """Why ``value`` cannot be a header field's text (a plain phrase, without the field's name,
    for the caller to prefix), or None when it can."""
    if any(c in _LINE_BREAKS for c in value):
        return "must be one line: it contains a line break"
    for c in value:
        if unicodedata.category(c) == "Cc":
            return f"contains a control character (U+{ord(c):04X}); please retype it"
    if len(value) > max_length:
        return f"is {len(value)} characters long; at most {max_length} are allowed"
    return None
