"""Ops page for the clinic's other systems (``/admin/ops/integrations``, the ``ops`` role only):
API keys (create: shown once; revoke) and outgoing webhooks (add: the secret shown once;
remove, switch back on, replay a failed delivery), the same actions as ``clinicmail apikeys``
and ``clinicmail webhooks``, audited under the staff member."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console.auth import OpsStaff
from console.deps import Ports
from console.ports import ConsolePorts
from console.render import page
from console.seam_calls import Refusal, call_seam
from core.errors import InputError
from outgoing import queue
from outgoing.events import EVENT_TYPES
from staff import audit
from staff.sessions import Session
from storage import utcnow

SCOPES = ("subscribers:read", "subscribers:write", "events:write", "stats:read", "webhooks:manage")
DONE = {
    "revoked": "Key revoked: it is refused from now on.",
    "removed": "Webhook removed with its deliveries.",
    "enabled": "Webhook switched on again.",
    "replayed": "Delivery queued again.",
}


def show(
    request: Request,
    ports: ConsolePorts,
    *,
    error: str | None = None,
    done: str | None = None,
    new_key: str | None = None,
    new_secret: str | None = None,
    status: int = 200,
) -> Response:
    with ports.db.begin() as conn:
        hooks = queue.endpoints(conn)
        recent = {e.id: queue.deliveries(conn, e.id, limit=10) for e in hooks}
    return page(
        request,
        "ops/integrations.html",
        {
            "title": "Ops · API keys and webhooks",
            "keys": ports.services.api_keys() if ports.services else [],
            "hooks": hooks,
            "recent": recent,
            "scopes": SCOPES,
            "events": EVENT_TYPES,
            "error": error,
            "done": DONE.get(done or ""),
            "new_key": new_key,
            "new_secret": new_secret,
        },
        status=status,
    )


router = APIRouter()


@router.get("/admin/ops/integrations", include_in_schema=False)
def integrations(request: Request, session: OpsStaff, ports: Ports) -> Response:
    return show(request, ports, done=request.query_params.get("done"))


def on_page(request: Request, ports: ConsolePorts) -> Refusal:
    return lambda message, status: show(request, ports, error=message, status=status)


@router.post("/admin/ops/integrations/keys", include_in_schema=False)
async def create_key(request: Request, session: OpsStaff, ports: Ports) -> Response:
    form = await request.form()
    name = str(form.get("name", "")).strip()
    scopes = ",".join(str(s) for s in form.getlist("scopes"))
    key = call_seam(
        ports.services.create_api_key if ports.services else None,
        name,
        scopes,
        session.user,
        verb="created",
        refuse=on_page(request, ports),
    )
    return key if isinstance(key, Response) else show(request, ports, new_key=key)


@router.post("/admin/ops/integrations/keys/{name}/revoke", include_in_schema=False)
def revoke_key(request: Request, name: str, session: OpsStaff, ports: Ports) -> Response:
    gone = call_seam(
        ports.services.revoke_api_key if ports.services else None,
        name,
        session.user,
        verb="revoked",
        refuse=on_page(request, ports),
        refused_status=404,  # the only refusal: no key by that name
    )
    if isinstance(gone, Response):
        return gone
    return RedirectResponse("/admin/ops/integrations?done=revoked", status_code=303)


@router.post("/admin/ops/integrations/webhooks", include_in_schema=False)
async def add_webhook(request: Request, session: OpsStaff, ports: Ports) -> Response:
    form = await request.form()
    url = str(form.get("url", ""))
    events = [str(e) for e in form.getlist("events")]
    now = utcnow()
    try:
        with ports.db.begin() as conn:
            made, secret = queue.add(conn, url, events, now)
            audit.record(
                conn,
                session.user,
                "webhook.add",
                "webhook",
                made.public_id,
                now,
                {"events": list(made.events)},
            )
    except InputError as exc:
        return show(request, ports, error=f"Not added: {exc}", status=422)
    return show(request, ports, new_secret=secret)


def change(
    request: Request, session: Session, ports: ConsolePorts, public_id: str, action: str
) -> Response:
    now = utcnow()
    try:
        with ports.db.begin() as conn:
            found = queue.endpoint(conn, public_id)
            if found is None or found.public_id != public_id:
                return show(request, ports, error="No such webhook.", status=404)
            if action == "remove":
                queue.remove(conn, public_id)
            else:
                queue.enable(conn, public_id)
            audit.record(conn, session.user, f"webhook.{action}", "webhook", public_id, now)
    except InputError as exc:
        return show(request, ports, error=str(exc), status=422)
    done = "removed" if action == "remove" else "enabled"
    return RedirectResponse(f"/admin/ops/integrations?done={done}", status_code=303)


@router.post("/admin/ops/integrations/webhooks/{public_id}/remove", include_in_schema=False)
def remove_webhook(request: Request, public_id: str, session: OpsStaff, ports: Ports) -> Response:
    return change(request, session, ports, public_id, "remove")


@router.post("/admin/ops/integrations/webhooks/{public_id}/enable", include_in_schema=False)
def enable_webhook(request: Request, public_id: str, session: OpsStaff, ports: Ports) -> Response:
    return change(request, session, ports, public_id, "enable")


@router.post("/admin/ops/integrations/deliveries/{delivery_id}/replay", include_in_schema=False)
def replay(request: Request, delivery_id: int, session: OpsStaff, ports: Ports) -> Response:
    now = utcnow()
    try:
        with ports.db.begin() as conn:
            queue.replay(conn, delivery_id, now)
            audit.record(
                conn, session.user, "webhook.replay", "webhook_delivery", str(delivery_id), now
            )
    except InputError as exc:
        return show(request, ports, error=str(exc), status=404)
    return RedirectResponse("/admin/ops/integrations?done=replayed", status_code=303)
