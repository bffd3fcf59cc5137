"""Ops pages (the ``ops`` role only; anyone else gets 403): staff accounts, the audit log,
the effective settings with secrets redacted, transport status and a test email."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console import audit_rows
from console.auth import OpsStaff
from console.deps import Db, Ports, Svc
from console.render import page
from console.seam_calls import Refusal, call_seam
from console.services import Services
from staff import accounts, admin, audit
from staff.passwords import WeakPassword
from staff.roles import ROLES
from storage import Database, utcnow
from subscribers.addresses import InvalidAddress, normalize


def accounts_page(
    request: Request,
    db: Database,
    *,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    with db.begin() as conn:
        users = accounts.all_users(conn)
        locks = accounts.locks(conn, users, utcnow())
    return page(
        request,
        "ops/accounts.html",
        {
            "title": "Ops · accounts",
            "users": users,
            "locks": locks,
            "roles": ROLES,
            "error": error,
            "done": done,
        },
        status=status,
    )


def refused(request: Request, db: Database, exc: accounts.AccountError, verb: str) -> Response:
    """The page again with a plain line: 404 for a missing account, 409 for a conflict.
    Answered after the transaction has ended, so no lock is held while the page renders."""
    status = 404 if isinstance(exc, accounts.NoSuchAccount) else 409
    message = str(exc)
    return accounts_page(
        request, db, error=f"Not {verb}: {message[0].upper()}{message[1:]}.", status=status
    )


def transport_page(
    request: Request,
    services: Services,
    result: str | None,
    error: str | None,
    status: int = 200,
) -> Response:
    listed = services.sends_list
    return page(
        request,
        "ops/transport.html",
        {
            "title": "Ops · transport",
            "delivery": services.delivery(utcnow()),
            "failed": listed("failed") if listed else [],
            "unknown": listed("unknown") if listed else [],
            "result": result,
            "error": error,
        },
        status=status,
    )


router = APIRouter()


@router.get("/admin/ops", include_in_schema=False)
def ops_home(request: Request, session: OpsStaff, db: Db) -> Response:
    return accounts_page(request, db, done=request.query_params.get("done"))


@router.post("/admin/ops/accounts", include_in_schema=False)
async def add(request: Request, session: OpsStaff, db: Db) -> Response:
    form = await request.form()
    email, role = str(form.get("email", "")), str(form.get("role", ""))
    password = str(form.get("password", ""))
    try:
        digest = accounts.new_password(email, password)  # before the transaction opens
        with db.begin() as conn:
            admin.add(conn, session.user, email, role, digest, utcnow())
    except (accounts.AccountError, WeakPassword) as exc:
        return accounts_page(request, db, error=f"Not added: {exc}.", status=422)
    return RedirectResponse("/admin/ops?done=added", status_code=303)


@router.post("/admin/ops/accounts/{user_id}/disable", include_in_schema=False)
def disable(request: Request, user_id: int, session: OpsStaff, db: Db) -> Response:
    try:
        with db.begin() as conn:
            user = accounts.require_id(conn, user_id)
            admin.disable(conn, session.user, user.email, utcnow())
    except accounts.AccountError as exc:
        return refused(request, db, exc, "disabled")
    return RedirectResponse("/admin/ops?done=disabled", status_code=303)


@router.post("/admin/ops/accounts/{user_id}/unlock", include_in_schema=False)
def unlock(request: Request, user_id: int, session: OpsStaff, db: Db) -> Response:
    try:
        with db.begin() as conn:
            user = accounts.require_id(conn, user_id)
            admin.unlock(conn, session.user, user.email, utcnow())
    except accounts.AccountError as exc:
        return refused(request, db, exc, "unlocked")
    return RedirectResponse("/admin/ops?done=unlocked", status_code=303)


@router.post("/admin/ops/accounts/{user_id}/reset", include_in_schema=False)
async def reset(request: Request, user_id: int, session: OpsStaff, db: Db) -> Response:
    form = await request.form()
    password = str(form.get("password", ""))
    try:
        with db.begin() as conn:
            user = accounts.require_id(conn, user_id)
        digest = accounts.new_password(user.email, password)  # no transaction open
        with db.begin() as conn:
            admin.reset_password(conn, session.user, user.email, digest, utcnow())
    except accounts.AccountError as exc:
        return refused(request, db, exc, "reset")
    except WeakPassword as exc:
        return accounts_page(request, db, error=f"Not reset: {exc}.", status=422)
    return RedirectResponse("/admin/ops?done=reset", status_code=303)


AUDIT_PAGE = 100


@router.get("/admin/ops/audit", include_in_schema=False)
def audit_log(
    request: Request,
    session: OpsStaff,
    ports: Ports,
    actor: str = "",
    action: str = "",
    target: str = "",
    before: str = "",
) -> Response:
    """The audit log newest first, a page at a time: the filters (who, action prefix, record
    id) live in the URL, and ``before`` is the keyset cursor (the last entry id shown)."""
    filters = {"actor": actor.strip(), "action": action.strip(), "target": target.strip()}
    cursor = int(before) if before.isdigit() else None
    with ports.db.begin() as conn:
        entries = audit.entries(
            conn,
            actor=filters["actor"] or None,
            action=filters["action"] or None,
            target_id=filters["target"] or None,
            limit=AUDIT_PAGE + 1,
            before=cursor,
        )
    more = len(entries) > AUDIT_PAGE
    entries = entries[:AUDIT_PAGE]
    kept = {k: v for k, v in filters.items() if v}
    zone = ports.clinic_zone()
    return page(
        request,
        "ops/audit.html",
        {
            "title": "Ops · audit log",
            "rows": [audit_rows.row(e, zone) for e in entries],
            "filters": filters,
            "zone": zone.key,
            "next_url": (
                "/admin/ops/audit?" + urlencode({**kept, "before": entries[-1].id}) if more else ""
            ),
            "first_url": (
                "/admin/ops/audit" + (f"?{urlencode(kept)}" if kept else "") if cursor else ""
            ),
        },
    )


@router.get("/admin/ops/settings", include_in_schema=False)
def settings(request: Request, session: OpsStaff, services: Svc) -> Response:
    return page(
        request, "ops/settings.html", {"title": "Ops · settings", "settings": services.settings()}
    )


def on_transport_page(request: Request, services: Services) -> Refusal:
    return lambda message, status: transport_page(request, services, None, message, status)


def done_on_transport_page(
    request: Request, services: Services, outcome: str | Response
) -> Response:
    if isinstance(outcome, Response):
        return outcome
    return transport_page(request, services, outcome + ".", None)


@router.post("/admin/ops/transport/reset", include_in_schema=False)
def transport_reset(request: Request, session: OpsStaff, services: Svc) -> Response:
    outcome = call_seam(
        services.transport_reset,
        session.user,
        verb="reset",
        refuse=on_transport_page(request, services),
    )
    return done_on_transport_page(request, services, outcome)


@router.post("/admin/ops/transport/release", include_in_schema=False)
async def set_aside_release(request: Request, session: OpsStaff, services: Svc) -> Response:
    """Send one set-aside email again (the others stay held)."""
    form = await request.form()
    campaign, step, variant = (str(form.get(k, "")) for k in ("campaign", "step", "variant"))
    if not (campaign and step and variant):
        return transport_page(request, services, None, "Not released: name the email.", 422)
    outcome = call_seam(
        services.set_aside_release,
        campaign,
        step,
        variant,
        session.user,
        verb="released",
        refuse=on_transport_page(request, services),
    )
    return done_on_transport_page(request, services, outcome)


@router.post("/admin/ops/sends/retry", include_in_schema=False)
async def sends_retry(request: Request, session: OpsStaff, services: Svc) -> Response:
    form = await request.form()
    try:
        ids = [int(str(v)) for v in form.getlist("send")]
    except ValueError:
        return transport_page(
            request, services, None, "Not retried: a send id is not a number.", 422
        )
    if not ids:
        return transport_page(
            request, services, None, "Not retried: choose at least one send.", 422
        )
    outcome = call_seam(
        services.sends_retry,
        ids,
        session.user,
        verb="retried",
        refuse=on_transport_page(request, services),
    )
    return done_on_transport_page(request, services, outcome)


@router.post("/admin/ops/sends/{send}/resolve", include_in_schema=False)
async def sends_resolve(request: Request, send: int, session: OpsStaff, services: Svc) -> Response:
    form = await request.form()
    choice = str(form.get("as", ""))
    if choice not in ("sent", "resend"):
        return transport_page(
            request, services, None, "Say whether it was sent or must be resent.", 422
        )
    outcome = call_seam(
        services.sends_resolve,
        send,
        choice == "sent",
        session.user,
        verb="resolved",
        refuse=on_transport_page(request, services),
    )
    return done_on_transport_page(request, services, outcome)


@router.get("/admin/ops/transport", include_in_schema=False)
def transport(request: Request, session: OpsStaff, services: Svc) -> Response:
    return transport_page(request, services, None, None)


@router.post("/admin/ops/test-email", include_in_schema=False)
async def test_email(request: Request, session: OpsStaff, db: Db, services: Svc) -> Response:
    form = await request.form()
    try:
        to, _ = normalize(str(form.get("to", "")))
    except InvalidAddress as exc:
        return transport_page(request, services, None, f"Not sent: {exc}.", status=422)
    outcome = services.test_email(to)
    now = utcnow()
    with db.begin() as conn:
        audit.record(
            conn, session.user, "ops.test_email", "transport", "test", now, {"outcome": outcome}
        )
    return transport_page(request, services, f"Test email: {outcome}.", None)
