"""The operator's levers over the send ledger, shared by the CLI (``clinicmail sends …``,
``clinicmail transport reset``) and the console's ops page. Every change is audited (actor
None = the command line) in the transaction that makes it.

- **list** ``failed`` or ``unknown`` sends (opaque ids only);
- **retry** failed sends, by id or planned since a time: each goes back to ``pending`` unless
  its person is now unsubscribed, suppressed or erased (those are skipped and said so; the claim
  checks consent and suppression again anyway);
- **resolve** an ``unknown`` send after checking the relay's log: ``--sent`` (it went; the
  weekly cap counts it from now) or ``--resend`` (it did not; it goes at the next tick);
- **reset** the transport: forget the back-off and the account pause, the emails set aside
  for refused content and each waiting retry's own back-off, so the next tick tries at once;
- **release** one email set aside for refused content (campaign, step, variant), once the
  operator knows why the provider refused it and that it will not again (a raised size limit,
  a provider's mistake); the others stay held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.context import AppContext
from campaigns import ledger
from core.errors import InputError
from scheduler import setaside
from scheduler.breaker import TransportBreaker
from staff import audit
from staff.accounts import StaffUser
from subscribers import store
from subscribers.tables import subscribers


class LeverError(InputError, ValueError):
    """A lever cannot do what it was asked (an unknown id, a send in the wrong state)."""


LISTABLE = {"failed": ledger.FAILED, "unknown": ledger.UNKNOWN}


def list_sends(ctx: AppContext, status: str, limit: int = 1000) -> list[dict[str, Any]]:
    if status not in LISTABLE:
        raise LeverError(f"--status must be one of {', '.join(LISTABLE)}, not {status!r}")
    with ctx.db.begin() as conn:
        rows = ledger.rows_in(conn, LISTABLE[status], limit=limit)
    for row in rows:
        at = row["next_attempt_at"]
        row["next_attempt_at"] = at.isoformat() if at else None
    return rows


@dataclass
class RetryOutcome:
    retried: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # id -> why

    def line(self) -> str:
        text = f"retrying {len(self.retried)} send(s)"
        if self.skipped:
            text += (
                f"; skipped {len(self.skipped)} ("
                + "; ".join(f"{i}: {why}" for i, why in sorted(self.skipped.items())[:10])
                + ")"
            )
        return text


def retry_sends(
    ctx: AppContext,
    ids: Sequence[int],
    since: datetime | None,
    now: datetime,
    actor: StaffUser | None = None,
) -> RetryOutcome:
    out = RetryOutcome()
    with ctx.db.begin() as conn:
        wanted = list(ids) if since is None else ledger.failed_since(conn, since)
        found = ledger.statuses(conn, wanted)
        for i in wanted:
            if i not in found:
                out.skipped[i] = "no such send"
            elif found[i][0] != ledger.FAILED:
                out.skipped[i] = f"is {found[i][0]}, not failed"
        candidates = [i for i in wanted if i not in out.skipped]
        people = {
            r.id: r
            for r in conn.execute(
                subscribers.select().where(subscribers.c.id.in_({found[i][1] for i in candidates}))
            )
        }
        suppressed = store.suppressed_keys(conn, {p.email_key for p in people.values()})
        for i in candidates:
            person = people.get(found[i][1])
            if person is None:
                out.skipped[i] = "the person was erased"
            elif person.status == store.UNSUBSCRIBED:
                out.skipped[i] = "the person unsubscribed"
            elif person.email_key in suppressed:
                out.skipped[i] = "the address is suppressed"
            else:
                out.retried.append(i)
        ledger.retry_failed(conn, out.retried, now)
        if out.retried:
            audit.record(
                conn,
                actor,
                "sends.retry",
                "send",
                ",".join(map(str, out.retried))[:200],
                now,
                {"retried": len(out.retried), "skipped": len(out.skipped)},
            )
    if not out.retried and ids and since is None:
        raise LeverError(out.line())
    return out


def resolve_send(
    ctx: AppContext, send: int, *, sent: bool, now: datetime, actor: StaffUser | None = None
) -> str:
    with ctx.db.begin() as conn:
        found = ledger.statuses(conn, [send])
        if send not in found:
            raise LeverError(f"no send {send}")
        if found[send][0] != ledger.UNKNOWN:
            raise LeverError(f"send {send} is {found[send][0]}: only an unknown send is resolved")
        ledger.resolve_unknown(conn, [send], now, sent=sent)
        audit.record(
            conn,
            actor,
            "sends.resolve",
            "send",
            str(send),
            now,
            {"as": "sent" if sent else "resend"},
        )
    return f"send {send} " + ("marked sent" if sent else "goes again at the next tick")


def reset_transport(ctx: AppContext, now: datetime, actor: StaffUser | None = None) -> str:
    breaker = TransportBreaker(ctx.db, ctx.settings.transport, ctx.settings.staff_email)
    before = breaker.reset()
    cleared = setaside.clear(ctx.db)
    with ctx.db.begin() as conn:
        due = ledger.retry_now(conn, now)
        audit.record(
            conn,
            actor,
            "transport.reset",
            "transport",
            ctx.settings.transport,
            now,
            {
                "backoff_until": before.backoff_until,
                "paused": before.paused is not None,
                "set_aside_cleared": cleared,
                "retries_due_now": due,
            },
        )
    parts = []
    if before.backoff_until:
        parts.append(f"back-off until {before.backoff_until} cleared")
    if before.paused:
        parts.append("pause cleared")
    if cleared:
        parts.append(f"{cleared} email(s) no longer set aside")
    if due:
        parts.append(f"{due} send(s) waiting to retry are due now")
    return "transport reset: " + (", ".join(parts) if parts else "nothing was holding it back")


def release_set_aside(
    ctx: AppContext,
    campaign_id: str,
    step_id: str,
    variant_id: str | None,
    now: datetime,
    actor: StaffUser | None = None,
) -> str:
    """Release one set-aside email. Without ``variant_id`` the step must have exactly one
    variant set aside."""
    held = [
        (e["campaign_id"], e["step_id"], e["variant_id"])
        for e in setaside.entries(ctx.db)
        if e["campaign_id"] == campaign_id and e["step_id"] == step_id
    ]
    if variant_id is not None:
        held = [h for h in held if h[2] == variant_id]
    named = f"{campaign_id}/{step_id}" + (f"/{variant_id}" if variant_id else "")
    if not held:
        raise LeverError(f"{named} is not set aside (clinicmail transport status lists what is)")
    if len(held) > 1:
        variants = ", ".join(h[2] for h in held)
        raise LeverError(f"{named} has several variants set aside ({variants}): give --variant")
    email = held[0]
    entry = setaside.release(ctx.db, email)
    if entry is None:  # released by someone else meanwhile
        raise LeverError(f"{named} is not set aside any more")
    with ctx.db.begin() as conn:
        audit.record(
            conn,
            actor,
            "transport.release",
            "email",
            "/".join(email)[:128],
            now,
            {"reason": str(entry.get("reason", ""))[:200], "since": entry.get("since")},
        )
    return f"{'/'.join(email)} is no longer set aside: it goes at the next tick"


def status(ctx: AppContext) -> dict[str, Any]:
    """What holds delivery back now: the back-off, the pause, the emails set aside."""
    state = TransportBreaker(ctx.db, ctx.settings.transport, ctx.settings.staff_email).state()
    return {
        "transport": ctx.settings.transport,
        "paused": state.paused,
        "paused_since": state.paused_since,
        "backoff_until": state.backoff_until,
        "failures": state.failures,
        "last_error": state.last_error,
        "set_aside": setaside.entries(ctx.db),
    }
