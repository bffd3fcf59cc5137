"""Broken campaigns while the service runs: set aside, recorded, staff alerted once.

A campaign whose emails cannot be built with this installation's settings (a template that
breaks a sandbox bound, a file made invalid after validation) must not stop the service: the
context loads the library with the broken campaigns standing in as paused placeholders
(:func:`campaigns.loader.set_aside`), every tick records the set here (one JSON row in ``kv``),
and staff get one email per campaign each time it breaks. ``tick --json`` and ``campaigns
list`` show the set; fixing the files ends it at the next tick.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scheduler.runtime import Runtime
from scheduler.transports import Batch, send_staff_alert
from storage import kvstate
from templates.system import render_ops_email

log = logging.getLogger("clinicmail.library")
KEY = "campaigns.broken"


@dataclass
class BrokenState(kvstate.JsonState):
    # campaign id -> {"since": ISO time, "problems": [str], "alerted": bool}
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
                "alerted": bool(before.get(cid, {}).get("alerted")),
            }
            for cid, problems in broken.items()
        }
        if state.campaigns != before:
            kvstate.write(conn, KEY, state.dump())
    waiting = sorted(cid for cid, v in state.campaigns.items() if not v["alerted"])
    for cid in sorted(set(broken) - set(before)):
        log.error("campaign %s is set aside: %d problem(s) in its files", cid, len(broken[cid]))
    if waiting and _alert(ctx, waiting, broken):
        with ctx.db.begin() as conn:
            state = BrokenState.load(kvstate.read_locked(conn, KEY, BrokenState().dump()))
            for cid in waiting:
                if cid in state.campaigns:
                    state.campaigns[cid]["alerted"] = True
            kvstate.write(conn, KEY, state.dump())
    return broken


def _alert(ctx: Runtime, ids: list[str], broken: dict[str, list[str]]) -> bool:
    """One email to staff naming the campaigns and their problems; True once it is handled."""
    staff = ctx.settings.staff_email
    if not staff:
        return True  # the ERROR line above is all there is
    rendered = render_ops_email(
        ctx.renderer,
        "campaign-alert",
        {
            "count": len(ids),
            "campaigns": ", ".join(ids),
            "problems": [p for cid in ids for p in broken[cid]][:50],
        },
    )
    batch = Batch.staff_alert(
        rendered,
        alert="campaign-alert",
        send_id=uuid.uuid4().hex,
        to=staff,
        from_email=ctx.settings.from_email,
        from_name=ctx.settings.clinic_name,
    )
    # Handled once accepted or refused for good; otherwise the next tick tries again.
    return send_staff_alert(ctx.transport, batch, "campaign alert", log) is not None
