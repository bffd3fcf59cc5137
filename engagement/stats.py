"""Engagement per campaign, step, variant and symptom group (``clinicmail stats``).

``sent`` counts ledger rows of kind ``campaign`` with status ``sent``; every other figure comes
from stored events joined to those sends by ``send_id``:

* ``opens``/``clicks`` count human events; ``unique_opens``/``unique_clicks`` count sends with at
  least one. Machine opens (privacy proxies) and link-scanner clicks are stored, marked
  ``machine`` and never counted.
* ``delivered``, ``bounces``, ``spam_reports`` and ``unsubscribes`` count distinct sends, so a
  provider re-sending an event cannot inflate them.
* ``click_to_open`` is ``unique_clicks / unique_opens`` (0 when nobody opened).
* ``checkin_better``/``checkin_same``/``checkin_worse`` count people whose latest one-click
  check-in answer for that step was that answer (``subscriber_activity``).

Symptom groups (``subscribers.symptoms.GROUPS``) are counted from each recipient's *current*
codes: a person with ``lower_back`` and ``neck`` counts once in "where" and once under each code;
people who stated no code are in no group. Only aggregated counts leave this module.

Each figure is one statement joining the ledger's sends with the engagement package's events;
the ledger's read API (:mod:`campaigns.ledger_reads`: ``accepted_counts``, ``event_counts``,
``checkin_counts``) runs it, choosing the sends and grouping them, and this module hands it the
events table and says what to count over it: the vocabulary of events stays here, the ledger's
table and states stay there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func

from campaigns import ledger_reads
from campaigns.ledger_reads import Grouping
from engagement.events import Kind
from engagement.tables import email_events
from subscribers.symptoms import GROUPS, SYMPTOMS
from templates.checkin import ANSWERS

KEYS = (
    "sent",
    "delivered",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "bounces",
    "spam_reports",
    "unsubscribes",
)
CHECKIN_KEYS = ("checkin_better", "checkin_same", "checkin_worse")
COUNT_KEYS = KEYS + CHECKIN_KEYS
EVENT_KEYS = KEYS[1:]

Counts = dict[str, int]


def _zero() -> Counts:
    return dict.fromkeys(COUNT_KEYS, 0)


def _add(into: Counts, other: Counts) -> None:
    for k in COUNT_KEYS:
        into[k] += other[k]


def _public(counts: Counts) -> dict[str, Any]:
    opened = counts["unique_opens"]
    return {
        **counts,
        "click_to_open": round(counts["unique_clicks"] / opened, 4) if opened else 0.0,
    }


@dataclass
class StepStats:
    step: str
    number: int | None = None
    counts: Counts = field(default_factory=_zero)
    variants: dict[str, Counts] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "number": self.number,
            **_public(self.counts),
            "variants": [{"variant": v, **_public(c)} for v, c in sorted(self.variants.items())],
        }


@dataclass
class GroupStats:
    """One symptom group, with its codes."""

    group: str
    label: str
    counts: Counts = field(default_factory=_zero)
    codes: dict[str, Counts] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "label": self.label,
            **_public(self.counts),
            "codes": [{"code": c, **_public(n)} for c, n in self.codes.items()],
        }


def _groups() -> dict[str, GroupStats]:
    out = {g.id: GroupStats(g.id, g.label) for g in GROUPS}
    for s in SYMPTOMS:
        out[s.group].codes[s.code] = _zero()
    return out


@dataclass
class CampaignStats:
    id: str
    steps: dict[str, StepStats] = field(default_factory=dict)
    groups: dict[str, GroupStats] = field(default_factory=_groups)

    @property
    def counts(self) -> Counts:
        total = _zero()
        for s in self.steps.values():
            _add(total, s.counts)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **_public(self.counts),
            "steps": [s.as_dict() for s in self.steps.values()],
            "symptom_groups": [g.as_dict() for g in self.groups.values()],
        }


@dataclass
class Stats:
    campaigns: dict[str, CampaignStats] = field(default_factory=dict)

    @property
    def totals(self) -> Counts:
        total = _zero()
        for c in self.campaigns.values():
            _add(total, c.counts)
        return total

    @property
    def groups(self) -> dict[str, GroupStats]:
        """Across campaigns: each send belongs to one campaign, so per-campaign counts add up."""
        out = _groups()
        for camp in self.campaigns.values():
            for gid, g in camp.groups.items():
                _add(out[gid].counts, g.counts)
                for code, n in g.codes.items():
                    _add(out[gid].codes[code], n)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "totals": _public(self.totals),
            "campaigns": [c.as_dict() for c in self.campaigns.values()],
            "symptom_groups": [g.as_dict() for g in self.groups.values()],
        }

    def _campaign(self, campaign: str) -> CampaignStats:
        return self.campaigns.setdefault(campaign, CampaignStats(campaign))

    def _step(self, campaign: str, step: str) -> StepStats:
        return self._campaign(campaign).steps.setdefault(step, StepStats(step))


def _counted(conn: Connection, by: Sequence[Grouping]) -> dict[tuple[Any, ...], Counts]:
    """Every count, grouped by ``by`` (see :data:`campaigns.ledger_reads.Grouping`). All counts
    are distinct sends or events, so grouping by symptom codes cannot inflate them."""
    out: dict[tuple[Any, ...], Counts] = defaultdict(_zero)
    for key, n in ledger_reads.accepted_counts(conn, by).items():
        out[key]["sent"] += n

    e = email_events.c
    human_open = and_(e.kind == Kind.OPENED, e.machine.is_(False))
    human_click = and_(e.kind == Kind.CLICKED, e.machine.is_(False))

    def events_of(cond: Any) -> Any:
        return func.count(func.distinct(case((cond, e.id), else_=None)))

    def sends_with(cond: Any) -> Any:
        return func.count(func.distinct(case((cond, e.send_id), else_=None)))

    metrics = (
        sends_with(e.kind == Kind.DELIVERED),
        events_of(human_open),
        sends_with(human_open),
        events_of(human_click),
        sends_with(human_click),
        sends_with(e.kind == Kind.BOUNCED),
        sends_with(e.kind == Kind.COMPLAINED),
        sends_with(e.kind == Kind.UNSUBSCRIBED),
    )
    for key, values in ledger_reads.event_counts(conn, email_events, metrics, by).items():
        for name, value in zip(EVENT_KEYS, values, strict=True):
            out[key][name] += value

    for key_and_answer, n in ledger_reads.checkin_counts(conn, ANSWERS, by).items():
        out[key_and_answer[:-1]][f"checkin_{key_and_answer[-1]}"] += n
    return out


def collect(
    conn: Connection,
    layout: Iterable[tuple[str, Iterable[tuple[str, int]]]] = (),
) -> Stats:
    """Figures per (campaign, step, variant) and per (campaign, symptom group, code).

    ``layout`` lists the known campaigns and their ``(step id, number)`` in order, so steps
    nobody has been sent yet still show (as zeros) in the right order.
    """
    stats = Stats()
    for campaign_id, steps in layout:
        stats._campaign(campaign_id)
        for step_id, number in steps:
            stats._step(campaign_id, step_id).number = number

    by_variant = _counted(conn, ("campaign_id", "step_id", "variant_id"))
    for (campaign_id, step_id, variant_id), counts in by_variant.items():
        variants = stats._step(campaign_id, step_id).variants
        _add(variants.setdefault(variant_id, _zero()), counts)
    for camp in stats.campaigns.values():
        for step in camp.steps.values():
            step.counts = _zero()
            for v in step.variants.values():
                _add(step.counts, v)

    group_of = {sym.code: sym.group for sym in SYMPTOMS}
    for (campaign_id, gid), counts in _counted(conn, ("campaign_id", "symptom_group")).items():
        if gid in group_of.values():
            _add(stats._campaign(campaign_id).groups[gid].counts, counts)
    for (campaign_id, c), counts in _counted(conn, ("campaign_id", "symptom_code")).items():
        if c in group_of:
            _add(stats._campaign(campaign_id).groups[group_of[c]].codes[c], counts)
    return stats


# -- by week, for the chart ---------------------------------------------------------------------
@dataclass(frozen=True)
class WeekRow:
    week: date  # the Monday of the ISO week the emails were sent in
    campaign_id: str
    step_id: str
    sent: int
    unique_opens: int
    unique_clicks: int


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def weekly(conn: Connection) -> list[WeekRow]:
    """Sent, unique human opens and unique clicks by week of sending and (campaign, step)."""
    by: tuple[Grouping, ...] = ("sent_day", "campaign_id", "step_id")
    counts: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    def week_of(value: Any) -> date:
        d = _as_date(value)
        return d - timedelta(days=d.weekday())

    for (d, cid, sid), n in ledger_reads.accepted_counts(conn, by).items():
        if d is not None:  # accepted but with no time: not in any week
            counts[(week_of(d), cid, sid)][0] += n
    e = email_events.c
    human = e.machine.is_(False)
    unique = (
        func.count(func.distinct(case((and_(e.kind == Kind.OPENED, human), e.send_id)))),
        func.count(func.distinct(case((and_(e.kind == Kind.CLICKED, human), e.send_id)))),
    )
    answered = ledger_reads.event_counts(conn, email_events, unique, by, accepted_only=True)
    for (d, cid, sid), (opens, clicks) in answered.items():
        if d is not None:
            row = counts[(week_of(d), cid, sid)]
            row[1] += opens
            row[2] += clicks
    return [WeekRow(week, cid, sid, *values) for (week, cid, sid), values in sorted(counts.items())]


def by_week(conn: Connection) -> list[tuple[date, dict[str, Any]]]:
    """Every figure of :func:`collect` (same counting rules, same code) by the ISO week the
    emails were sent in (its Monday, UTC), oldest first: the console's dashboard charts."""
    weeks: dict[date, Counts] = defaultdict(_zero)
    for (value,), counts in _counted(conn, ("sent_day",)).items():
        if value is None:
            continue
        d = _as_date(value)
        _add(weeks[d - timedelta(days=d.weekday())], counts)
    return [(week, _public(counts)) for week, counts in sorted(weeks.items())]
