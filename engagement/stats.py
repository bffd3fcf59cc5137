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

The counts join the ledger's ``sends`` with the engagement package's events in one statement,
which the ledger cannot do (it sits below engagement), so this module reads the table itself:
one of the two allowed exceptions in ``tests/test_ledger_ownership.py``. The status and kind
words are the ledger's constants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, case, func, select

from campaigns.ledger import CAMPAIGN, SENT
from campaigns.ledger import sends as ledger_sends
from engagement.events import Kind
from engagement.tables import email_events
from subscribers.symptoms import GROUPS, SYMPTOMS
from subscribers.tables import subscriber_activity, subscriber_symptoms
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


def _counted(conn: Connection, sends: Table, dims: Sequence[Any], join: Any) -> dict[Any, Counts]:
    """Every count, grouped by ``dims`` (expressions over ``sends`` and ``join``'s tables).

    ``join(from_clause)`` adds tables the dimensions need (the symptom codes) or returns the
    clause unchanged. All counts are ``COUNT(DISTINCT …)`` so such a join cannot inflate them.
    """
    out: dict[Any, Counts] = defaultdict(_zero)
    campaign_sends = sends.c.kind == CAMPAIGN
    for row in conn.execute(
        select(*dims, func.count(func.distinct(sends.c.id)))
        .select_from(join(sends))
        .where(campaign_sends, sends.c.status == SENT)
        .group_by(*dims)
    ):
        out[tuple(row[:-1])]["sent"] += int(row[-1])

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
    for row in conn.execute(
        select(*dims, *metrics)
        .select_from(join(email_events.join(sends, sends.c.send_id == e.send_id)))
        .where(campaign_sends)
        .group_by(*dims)
    ):
        key = tuple(row[: len(dims)])
        for name, value in zip(EVENT_KEYS, row[len(dims) :], strict=True):
            out[key][name] += int(value)

    a = subscriber_activity.c
    answered = subscriber_activity.join(
        sends,
        and_(
            sends.c.subscriber_id == a.subscriber_id,
            sends.c.campaign_id == a.campaign_id,
            sends.c.step_id == a.step_id,
        ),
    )
    for row in conn.execute(
        select(*dims, a.value, func.count(func.distinct(a.id)))
        .select_from(join(answered))
        .where(campaign_sends, a.kind == "checkin", a.value.in_(ANSWERS))
        .group_by(*dims, a.value)
    ):
        key = tuple(row[: len(dims)])
        out[key][f"checkin_{row[-2]}"] += int(row[-1])
    return out


def _no_join(clause: Any) -> Any:
    return clause


def _with_symptoms(sends: Table) -> Any:
    def join(clause: Any) -> Any:
        return clause.join(
            subscriber_symptoms, subscriber_symptoms.c.subscriber_id == sends.c.subscriber_id
        )

    return join


def collect(
    conn: Connection,
    layout: Iterable[tuple[str, Iterable[tuple[str, int]]]] = (),
) -> Stats:
    """Figures per (campaign, step, variant) and per (campaign, symptom group, code).

    ``layout`` lists the known campaigns and their ``(step id, number)`` in order, so steps
    nobody has been sent yet still show (as zeros) in the right order.
    """
    sends = ledger_sends
    stats = Stats()
    for campaign_id, steps in layout:
        stats._campaign(campaign_id)
        for step_id, number in steps:
            stats._step(campaign_id, step_id).number = number

    s = sends.c
    by_variant = _counted(conn, sends, (s.campaign_id, s.step_id, s.variant_id), _no_join)
    for (campaign_id, step_id, variant_id), counts in by_variant.items():
        variants = stats._step(campaign_id, step_id).variants
        _add(variants.setdefault(variant_id, _zero()), counts)
    for camp in stats.campaigns.values():
        for step in camp.steps.values():
            step.counts = _zero()
            for v in step.variants.values():
                _add(step.counts, v)

    group_of = {sym.code: sym.group for sym in SYMPTOMS}
    code = subscriber_symptoms.c.code
    group = case(group_of, value=code, else_="other")
    joined = _with_symptoms(sends)
    for (campaign_id, gid), counts in _counted(conn, sends, (s.campaign_id, group), joined).items():
        if gid in group_of.values():
            _add(stats._campaign(campaign_id).groups[gid].counts, counts)
    for (campaign_id, c), counts in _counted(conn, sends, (s.campaign_id, code), joined).items():
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
    sends = ledger_sends
    s, e = sends.c, email_events.c
    day = func.date(s.sent_at)
    base = and_(s.kind == CAMPAIGN, s.status == SENT, s.sent_at.is_not(None))
    counts: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    def week_of(value: Any) -> date:
        d = _as_date(value)
        return d - timedelta(days=d.weekday())

    for d, cid, sid, n in conn.execute(
        select(day, s.campaign_id, s.step_id, func.count())
        .where(base)
        .group_by(day, s.campaign_id, s.step_id)
    ):
        counts[(week_of(d), cid, sid)][0] += int(n)
    human = e.machine.is_(False)
    for d, cid, sid, opens, clicks in conn.execute(
        select(
            day,
            s.campaign_id,
            s.step_id,
            func.count(func.distinct(case((and_(e.kind == Kind.OPENED, human), e.send_id)))),
            func.count(func.distinct(case((and_(e.kind == Kind.CLICKED, human), e.send_id)))),
        )
        .select_from(email_events.join(sends, s.send_id == e.send_id))
        .where(base)
        .group_by(day, s.campaign_id, s.step_id)
    ):
        row = counts[(week_of(d), cid, sid)]
        row[1] += int(opens)
        row[2] += int(clicks)
    return [WeekRow(week, cid, sid, *values) for (week, cid, sid), values in sorted(counts.items())]


def by_week(conn: Connection) -> list[tuple[date, dict[str, Any]]]:
    """Every figure of :func:`collect` (same counting rules, same code) by the ISO week the
    emails were sent in (its Monday, UTC), oldest first: the console's dashboard charts."""
    sends = ledger_sends
    day = func.date(sends.c.sent_at)
    weeks: dict[date, Counts] = defaultdict(_zero)
    for (value,), counts in _counted(conn, sends, (day,), _no_join).items():
        if value is None:
            continue
        d = _as_date(value)
        _add(weeks[d - timedelta(days=d.weekday())], counts)
    return [(week, _public(counts)) for week, counts in sorted(weeks.items())]
