"""The one-click check-in block ("How is your pain this week?  Better / About the same / Worse").

A step opts in with ``checkin: true`` in its front matter. The renderer then adds this block
after the body, in the HTML part (three buttons) and the text part (three labelled links). Each
link is the recipient's signed check-in URL (the per-recipient token :data:`URL_FIELD`) followed
by ``/better``, ``/same`` or ``/worse``.

The answer values are the ones segment rules use (``checkin: worse``).
"""

from __future__ import annotations

# Worded for every path (back, neck, sciatica): the answer compares this week with last.
QUESTION = "How is your pain this week, compared with last week?"
CHOICES: tuple[tuple[str, str], ...] = (
    ("better", "Better"),
    ("same", "About the same"),
    ("worse", "Worse"),
)
ANSWERS = tuple(value for value, _ in CHOICES)
LABELS = dict(CHOICES)
URL_FIELD = "checkin_url"
