"""The one-click check-in block ("How is your pain this week?  Better / About the same / Worse").

A step opts in with ``checkin: true`` in its front matter. The renderer then adds this block
after the body, in the HTML part (three buttons) and the text part (three labelled links). Each
link is the recipient's signed check-in URL (the per-recipient token :data:`URL_FIELD`) followed
by ``/better``, ``/same`` or ``/worse``.

The answer values are the ones segment rules use (``checkin: worse``).
"""

from __future__ import annotations

from typing import Literal, get_args

# Worded for every path (back, neck, sciatica): the answer compares this week with last.
QUESTION = "How is your pain this week, compared with last week?"
# The answers, once: segment rules (``checkin: worse``), stored activity, newsletters' audience
# and the command line all name this type or :data:`ANSWERS`.
CheckinAnswer = Literal["better", "same", "worse"]
ANSWERS: tuple[CheckinAnswer, ...] = get_args(CheckinAnswer)
CHOICES: tuple[tuple[CheckinAnswer, str], ...] = (
    ("better", "Better"),
    ("same", "About the same"),
    ("worse", "Worse"),
)
assert tuple(value for value, _ in CHOICES) == ANSWERS
LABELS: dict[str, str] = dict(CHOICES)
URL_FIELD = "checkin_url"
