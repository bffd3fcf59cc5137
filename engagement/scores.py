"""Engagement scores: how recently and how often a person engages, as one number from 0 to 100.

Built only from human engagement (``subscriber_activity``: machine opens and link-scanner clicks
never get there) and the campaign emails the ledger says were sent, over a window of weeks::

    recency   = 0.5 ** (days since the last open, click or check-in / HALF_LIFE_DAYS)
    frequency = Σ per email received in the window: 1 if clicked or answered, ½ if only opened
                ───────────────────────────────────────────────────────────────────────────
                                    emails received in the window
    score     = round(100 × (recency + frequency) / 2)

A click (or a check-in answer, which is a click) weighs twice an open because opens are the
weaker signal: privacy proxies hide real opens and some machine opens slip through. Scores are
computed on demand, never stored, and only ever shown aggregated (:func:`buckets`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from campaigns.ledger_reads import campaign_received_since
from subscribers import activity, store
from subscribers.tables import subscriber_activity, subscribers

HALF_LIFE_DAYS = 28.0
WINDOW_WEEKS = 26
# (label, lowest score in the bucket), highest first
BUCKETS = (("engaged", 50), ("cooling", 20), ("dormant", 1), ("inactive", 0))


@dataclass(frozen=True)
class Score:
    subscriber_id: int
    received: int  # campaign emails sent to them in the window
    opened: int  # of those emails (steps), how many they opened but never clicked
    clicked: int  # … how many they clicked or answered
    last_engaged_at: datetime | None
    score: int


def compute(received: int, opened: int, clicked: int, last: datetime | None, now: datetime) -> int:
    if last is None:
        return 0
    days = max((now - last).total_seconds() / 86400, 0.0)
    recency: float = 0.5 ** (days / HALF_LIFE_DAYS)
    frequency = min(1.0, (clicked + 0.5 * opened) / received) if received else 0.0
    return round(100 * (recency + frequency) / 2)


def scores(
    conn: Connection,
    now: datetime,
    *,
    weeks: int = WINDOW_WEEKS,
    ids: Iterable[int] | None = None,
) -> dict[int, Score]:
    """Scores of confirmed subscribers (all of them, or ``ids``)."""
    since = now - timedelta(weeks=weeks)
    people = select(subscribers.c.id).where(subscribers.c.status == store.CONFIRMED)
    if ids is not None:
        people = people.where(subscribers.c.id.in_(list(ids)))
    wanted = set(conn.execute(people).scalars())
    received: dict[int, int] = dict.fromkeys(wanted, 0)
    for sid, n in campaign_received_since(conn, since).items():
        if sid in received:
            received[sid] = n
    a = subscriber_activity.c
    per_step: dict[int, dict[tuple[str, str], str]] = defaultdict(dict)
    last: dict[int, datetime] = {}
    for sid, kind, campaign_id, step_id, last_at in conn.execute(
        select(a.subscriber_id, a.kind, a.campaign_id, a.step_id, a.last_at).where(
            a.last_at > since
        )
    ):
        if sid not in received:
            continue
        if sid not in last or last_at > last[sid]:
            last[sid] = last_at
        step = (campaign_id, step_id)
        if kind in (activity.CLICK, activity.CHECKIN) or step not in per_step[sid]:
            per_step[sid][step] = kind
    out: dict[int, Score] = {}
    for sid, n in received.items():
        steps = per_step.get(sid, {})
        clicked = sum(1 for k in steps.values() if k != activity.OPEN)
        opened = len(steps) - clicked
        seen = last.get(sid)
        out[sid] = Score(sid, n, opened, clicked, seen, compute(n, opened, clicked, seen, now))
    return out


def buckets(all_scores: Iterable[Score]) -> dict[str, int]:
    """How many people fall in each band (aggregated counts only)."""
    counts = {label: 0 for label, _ in BUCKETS}
    for s in all_scores:
        for label, floor in BUCKETS:
            if s.score >= floor:
                counts[label] += 1
                break
    return counts
