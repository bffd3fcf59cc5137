"""Broken campaigns while the service runs: set aside, recorded, staff alerted once.

A campaign whose emails cannot be built with this installation's settings (a template that
breaks a sandbox bound, a file made invalid after validation) must not stop the service: the
context loads the library with the broken campaigns standing in as paused placeholders
(:func:`campaigns.loader.set_aside`), every tick records the set here (one JSON row in ``kv``),
and raises one staff alert (:mod:`alerts`) naming the campaigns newly broken: staff hear about
each campaign once each time it breaks. ``tick --json`` and ``campaigns
list`` show the set; fixing the files ends it at the next tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts import raise_alert
from scheduler.runtime import Runtime
from storage import kvstate
from templates.system import CAMPAIGN_ALERT

log = logging.getLogger("clinicmail.library")
KEY = "campaigns.broken"


@dataclass
class BrokenState(kvstate.JsonState):
    # campaign id -> {"since": ISO time, "problems": [str]}
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)


def broken_now(ctx: Runtime) -> dict[str, list[str]]:
    """Campaign id → its problems (``file:line: what``), as loaded by this process."""
    _ = ctx.catalog
    return {cid: [str(p) for p in problems] for cid, problems in sorted(ctx.broken.items())}


def record_broken(ctx: Runtime, now: datetime) -> dict[str, list[str]]:
    """Store the current set of broken campaigns and alert staff about new ones (once each)."""
    broken = broken_now(ctx)
    with ctx.db.begin() as conn:
        state = BrokenState.load(kvstate.read_locked(conn, KEY, BrokenState().dump()))
        before = state.campaigns
        state.campaigns = {
            cid: {
                "since": before.get(cid, {}).get("since", now.isoformat()),
                "problems": problems,
            }
            for cid, problems in broken.items()
        }
        if state.campaigns != before:
            kvstate.write(conn, KEY, state.dump())
        new = sorted(set(broken) - set(before))
        if new:  # one email naming them and their problems, in the same transaction
            raise_alert(
                conn,
                CAMPAIGN_ALERT,
                "|".join(f"{cid}@{state.campaigns[cid]['since']}" for cid in new),
                {
                    "count": len(new),
                    "campaigns": ", ".join(new),
                    "problems": [p for cid in new for p in broken[cid]][:50],
                },
                now,
            )
    for cid in new:
        log.error("campaign %s is set aside: %d problem(s) in its files", cid, len(broken[cid]))
    return broken
