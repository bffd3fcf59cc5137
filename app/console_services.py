"""The console's seams (:class:`console.services.Services`), built from the app context: the
same functions the CLI runs, so a figure or an action in the console is the CLI's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Connection, select
from sqlalchemy.engine import make_url

from app import levers
from app.broadcasting import BroadcastRequest, schedule
from app.context import AppContext
from app.importing import save_person
from app.privacy import erase_everywhere, export_json
from app.stats import stats_json
from app.testsend import send_test
from app.upcoming import upcoming
from campaigns.ledger import count_ready
from campaigns.ledger_reads import dispatch_counts
from campaigns.loader import CatalogError
from console.services import Services
from scheduler import setaside
from scheduler.breaker import KEY as BREAKER_KEY
from scheduler.breaker import BreakerState
from scheduler.planner import Planner
from staff.accounts import StaffUser
from storage import kvstate, utcnow
from subscribers.privacy import Erasure
from templates import Content
from transports import Outcome
from transports.tables import outbox

SECRET_WORDS = ("key", "secret", "password", "token")


def effective_settings(ctx: AppContext) -> list[tuple[str, str]]:
    """Every setting by its environment name, with secrets and URL passwords redacted."""
    settings = ctx.settings
    out = []
    for name, info in type(settings).model_fields.items():
        env = info.validation_alias if isinstance(info.validation_alias, str) else name
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = "(set, hidden)" if value.get_secret_value() else "(empty)"
        elif value is None:
            shown = "—"
        elif any(w in name.lower() for w in SECRET_WORDS):
            shown = "(set, hidden)"
        elif name.endswith("_url") and "://" in str(value):
            try:
                shown = make_url(str(value)).render_as_string(hide_password=True)
            except Exception:  # not an SQLAlchemy URL: an http base URL holds no password
                shown = str(value)
        else:
            shown = str(value)
        out.append((str(env), shown))
    return out


def delivery_status(ctx: AppContext, now: datetime) -> dict[str, Any]:
    from app.approvals import gate_notice

    with ctx.db.begin() as conn:
        ready = count_ready(conn, now)
        in_flight, unknown, last_sent = dispatch_counts(conn)
        state = BreakerState.load(kvstate.read(conn, BREAKER_KEY))
    return {
        "transport": ctx.settings.transport,
        "backlog": ready,
        "in_flight": int(in_flight),
        "unknown": int(unknown),
        "last_sent_at": last_sent.isoformat() if last_sent else None,
        "failures": state.failures,
        "backoff_until": state.backoff_until,
        "last_error": state.last_error,
        "healthy": state.clean,
        # Live content waiting for a clinician's approval (campaigns.review), as one line.
        "review_gate": gate_notice(ctx),
        "review_gate_holds": ctx.requires_approval,
        "paused": state.paused,
        "set_aside": setaside.entries(ctx.db),
    }


def send_test_email(ctx: AppContext, to: str) -> str:
    """One plain test message through the configured transport, marked as a test like the
    editor's test sends (:mod:`app.testsend`); never in the ledger or stats."""
    s = ctx.settings
    rendered = ctx.renderer.render(
        Content(
            subject=f"{s.clinic_name}: test email from the console",
            preheader="The transport works.",
            body="This is a test email sent from the clinicmail console to check delivery.\n",
            name="console/test-email",
        ),
        reason="a member of staff asked for a test email",
        list_name="system",
        with_unsubscribe=False,
    )
    try:
        outcome = send_test(ctx, to, rendered, {"first_name": "team"})
    except Exception as exc:  # the page says what happened; never a traceback
        return f"the transport raised {type(exc).__name__}"
    if outcome == Outcome.SENT.value:
        return f"accepted by the {s.transport} transport"
    return f"not accepted ({outcome})"


def outbox_list(ctx: AppContext, limit: int, before: int | None = None) -> list[dict[str, Any]]:
    """Newest first; ``before`` is the keyset cursor (an outbox id), so a page deep in the list
    costs the same primary-key range scan as the first."""
    c = outbox.c
    query = select(c.id, c.recipient, c.subject, c.created_at).order_by(c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(c.id < before)
    with ctx.db.begin() as conn:
        rows = conn.execute(query).mappings()
        return [dict(r) for r in rows]


def outbox_message(ctx: AppContext, message_id: int) -> dict[str, Any] | None:
    with ctx.db.begin() as conn:
        row = conn.execute(select(outbox).where(outbox.c.id == message_id)).mappings().first()
    return dict(row) if row else None


def outbox_of(ctx: AppContext, subscriber_id: int) -> dict[str, int]:
    c = outbox.c
    with ctx.db.begin() as conn:
        rows = conn.execute(select(c.send_id, c.id).where(c.subscriber_id == subscriber_id))
        return {str(r.send_id): int(r.id) for r in rows}


def campaign_names(ctx: AppContext) -> dict[str, str]:
    try:
        return {c.id: c.meta.name for c in ctx.catalog}
    except CatalogError:
        return {}


def broadcast(
    ctx: AppContext,
    slug: str,
    source_name: str,
    sources: dict[str, str],
    segment: Any,
    local_at: datetime,
    dry_run: bool,
    time_sensitive: bool = False,
) -> dict[str, Any]:
    """``clinicmail campaigns broadcast`` for the console (raises BroadcastRefused)."""
    from subscribers.segments import parse_rule

    request = BroadcastRequest(
        slug=slug,
        source_name=source_name,
        sources=sources,
        segment=segment,
        rule=parse_rule(segment),
        local_at=local_at,
        time_sensitive=time_sensitive,
    )
    return schedule(ctx, request, dry_run=dry_run, now=utcnow())


def console_services(ctx: AppContext) -> Services:
    def planner() -> Planner:
        return Planner(ctx.catalog, ctx.settings.cadence)

    def next_for(sid: int, now: datetime) -> list[dict[str, Any]]:
        with ctx.db.begin() as conn:
            return [u.as_dict() for u in upcoming(conn, planner(), sid, now)]

    def erase(email: str, now: datetime, who: StaffUser) -> Erasure:
        from staff import audit

        return erase_everywhere(ctx.db, email, now, audit=audit.writer(who, now))[0]

    def enrol(conn: Connection, sid: int, now: datetime) -> None:
        from app.onboarding import on_confirmed

        on_confirmed(
            conn,
            ctx.catalog,
            [sid],
            now,
            staff_email=ctx.settings.staff_email,
            followup=ctx.settings.followup,
        )

    return Services(
        export_json=lambda email: export_json(ctx.db, email),
        erase=erase,
        upcoming=next_for,
        enrol=enrol,
        stats=lambda now: stats_json(ctx, now),
        delivery=lambda now: delivery_status(ctx, now),
        settings=lambda: effective_settings(ctx),
        test_email=lambda to: send_test_email(ctx, to),
        campaign_names=lambda: campaign_names(ctx),
        outbox_list=lambda limit, before: outbox_list(ctx, limit, before),
        outbox_message=lambda message_id: outbox_message(ctx, message_id),
        outbox_of=lambda subscriber_id: outbox_of(ctx, subscriber_id),
        save_person=lambda fields, who: save_person(ctx, fields, utcnow(), who),
        broadcast=lambda *args: broadcast(ctx, *args),
        api_keys=lambda: api_key_list(ctx),
        create_api_key=lambda name, scopes, who: create_api_key(ctx, name, scopes, who),
        revoke_api_key=lambda name, who: revoke_api_key(ctx, name, who),
        banner=lambda: delivery_banner(ctx),
        sends_list=lambda status: levers.list_sends(ctx, status, 100),
        sends_retry=lambda ids, actor: levers.retry_sends(ctx, ids, None, utcnow(), actor).line(),
        sends_resolve=lambda send, sent, actor: levers.resolve_send(
            ctx, send, sent=sent, now=utcnow(), actor=actor
        ),
        transport_reset=lambda actor: levers.reset_transport(ctx, utcnow(), actor),
        set_aside_release=lambda campaign, step, variant, actor: levers.release_set_aside(
            ctx, campaign, step, variant, utcnow(), actor
        ),
    )


def api_key_list(ctx: AppContext) -> list[dict[str, Any]]:
    from api import keys

    with ctx.db.begin() as conn:
        return [
            {
                "name": k.name,
                "prefix": k.prefix,
                "scopes": list(k.scopes),
                "created_at": k.created_at,
                "last_used_at": k.last_used_at,
                "revoked_at": k.revoked_at,
            }
            for k in keys.all_keys(conn)
        ]


def create_api_key(ctx: AppContext, name: str, scopes: str, who: StaffUser) -> str:
    """``clinicmail apikeys create`` for the console; the key is returned once."""
    from api import keys
    from staff import audit

    wanted = keys.parse_scopes(scopes)
    now = utcnow()
    with ctx.db.begin() as conn:
        made, key = keys.create(conn, name, wanted, now)
        audit.record(
            conn, who, "apikey.create", "apikey", made.prefix, now, {"scopes": list(wanted)}
        )
    return key


def revoke_api_key(ctx: AppContext, name: str, who: StaffUser) -> None:
    from api import keys
    from staff import audit

    now = utcnow()
    with ctx.db.begin() as conn:
        gone = keys.revoke(conn, name, now)
        audit.record(conn, who, "apikey.revoke", "apikey", gone.prefix, now)


def delivery_banner(ctx: AppContext) -> str | None:
    """The console's banner while the provider refuses the account: what to fix."""
    with ctx.db.begin() as conn:
        return BreakerState.load(kvstate.read(conn, BREAKER_KEY)).paused
