"""Engagement per campaign, step and variant (``clinicmail stats``).

``sent`` counts ledger rows of kind ``campaign`` with status ``sent``; every other figure comes
from stored provider events joined to those sends by ``send_id``. ``opens``/``clicks`` count
events (human opens only: machine opens such as Apple Mail Privacy Protection prefetches are
stored but never counted); ``unique_*``, ``delivered``, ``bounces``, ``spam_reports`` and
``unsubscribes`` count distinct sends, so a provider re-sending an event cannot inflate them.

The ``sends`` table belongs to the scheduler; it is handed in rather than imported so this package
never depends on the composition root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, and_, case, func, literal, select

from engagement.events import Kind
from engagement.tables import email_events

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

CAMPAIGN_KIND = "campaign"
SENT_STATUS = "sent"


def _zero() -> dict[str, int]:
    return dict.fromkeys(KEYS, 0)


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for k in KEYS:
        into[k] += other[k]


@dataclass
class StepStats:
    step: str
    number: int | None = None
    counts: dict[str, int] = field(default_factory=_zero)
    variants: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "number": self.number,
            **self.counts,
            "variants": [{"variant": v, **c} for v, c in sorted(self.variants.items())],
        }


@dataclass
class CampaignStats:
    id: str
    steps: dict[str, StepStats] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        total = _zero()
        for s in self.steps.values():
            _add(total, s.counts)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.counts,
            "steps": [s.as_dict() for s in self.steps.values()],
        }


@dataclass
class Stats:
    campaigns: dict[str, CampaignStats] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        total = _zero()
        for c in self.campaigns.values():
            _add(total, c.counts)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "totals": self.totals,
            "campaigns": [c.as_dict() for c in self.campaigns.values()],
        }

    def _step(self, campaign: str, step: str) -> StepStats:
        camp = self.campaigns.setdefault(campaign, CampaignStats(campaign))
        return camp.steps.setdefault(step, StepStats(step))


def collect(
    conn: Connection,
    sends: Table,
    layout: Iterable[tuple[str, Iterable[tuple[str, int]]]] = (),
) -> Stats:
    """Figures per (campaign, step, variant).

    ``layout`` lists the known campaigns and their ``(step id, number)`` in order, so steps
    nobody has been sent yet still show (as zeros) in the right order.
    """
    stats = Stats()
    for campaign_id, steps in layout:
        stats.campaigns.setdefault(campaign_id, CampaignStats(campaign_id))
        for step_id, number in steps:
            stats._step(campaign_id, step_id).number = number

    group = (sends.c.campaign_id, sends.c.step_id, sends.c.variant_id)
    campaign_sends = sends.c.kind == CAMPAIGN_KIND
    for row in conn.execute(
        select(*group, func.count().label("n"))
        .where(campaign_sends, sends.c.status == SENT_STATUS)
        .group_by(*group)
    ):
        _variant(stats, row.campaign_id, row.step_id, row.variant_id)["sent"] += row.n

    e = email_events.c
    human_open = and_(e.kind == Kind.OPENED, e.machine.is_(False))

    def events_of(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), literal(0))

    def sends_with(cond: Any) -> Any:
        return func.count(func.distinct(case((cond, e.send_id), else_=None)))

    query = (
        select(
            *group,
            sends_with(e.kind == Kind.DELIVERED).label("delivered"),
            events_of(human_open).label("opens"),
            sends_with(human_open).label("unique_opens"),
            events_of(e.kind == Kind.CLICKED).label("clicks"),
            sends_with(e.kind == Kind.CLICKED).label("unique_clicks"),
            sends_with(e.kind == Kind.BOUNCED).label("bounces"),
            sends_with(e.kind == Kind.COMPLAINED).label("spam_reports"),
            sends_with(e.kind == Kind.UNSUBSCRIBED).label("unsubscribes"),
        )
        .select_from(email_events.join(sends, sends.c.send_id == e.send_id))
        .where(campaign_sends)
        .group_by(*group)
    )
    for m in conn.execute(query).mappings():
        counts = _variant(stats, m["campaign_id"], m["step_id"], m["variant_id"])
        for k in KEYS[1:]:
            counts[k] += int(m[k])

    for camp in stats.campaigns.values():
        for step in camp.steps.values():
            step.counts = _zero()
            for v in step.variants.values():
                _add(step.counts, v)
    return stats


def _variant(stats: Stats, campaign: str, step: str, variant: str) -> dict[str, int]:
    return stats._step(campaign, step).variants.setdefault(variant, _zero())
