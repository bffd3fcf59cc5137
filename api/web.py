"""``/api/v1``: the API for the clinic's other systems (a booking system, a patient-management
system). Every route needs ``Authorization: Bearer KEY`` with the route's scope
(:mod:`api.keys`); every error is an RFC 9457 problem (:mod:`api.problems`); no personal or
health data travels in a URL or a query string (a person is named by email in a JSON body, or
by their opaque id). POSTs that change something honour ``Idempotency-Key``; lists page with an
opaque ``cursor``. Each use of a key is logged with its route and answer, and each key has its
own rate limit.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' parameter types
# (the scope aliases ``Reader``, ``Writer`` …, and ``Ports``) as objects when each is defined.
import base64
import binascii
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from api import idempotency, keys
from api.keys import ApiKey
from api.models import (
    PUBLIC_ID,
    Accepted,
    Campaign,
    CampaignPage,
    ChangeIn,
    Delivery,
    DeliveryPage,
    Done,
    EpisodeIn,
    EpisodeOut,
    EventIn,
    Lookup,
    NewWebhook,
    NotYet,
    Step,
    Subscriber,
    SubscriberPage,
    Webhook,
    WebhookIn,
    WebhookPage,
)
from api.problems import PROBLEM_JSON, Problem, described, install_handlers
from campaigns import enrollment, goals
from campaigns.loader import Catalog
from core.routes import add_routes
from core.throttle import Throttle
from outgoing import events as outgoing_events
from outgoing import queue
from staff import audit
from storage import Database
from subscribers import changes, store
from subscribers.signup import Confirmation, SignupRequest, register
from subscribers.symptoms import has_red_flag

PREFIX = "/api/v1"
PAGE = 50
ACCEPTED_MESSAGE = "Stored: a confirmation email goes to the address (double opt-in)."
URGENT_CARE = (
    "Some of what was reported can be a sign that a doctor needs to see the person quickly: "
    "they should get urgent medical care now. The safety email goes once the address is "
    "confirmed, and staff are alerted."
)


@dataclass
class ApiPorts:
    """What the routes need from the composition root."""

    db: Database
    catalog: Callable[[], Catalog]
    # The signup's own next step (queue the confirmation email), in the signup's transaction.
    on_signup: Callable[[Connection, Confirmation, datetime], None]
    on_confirmed: Callable[[Connection, list[int], datetime], None]
    on_unsubscribed: Callable[[Connection, int, datetime], None]
    export: Callable[[str], str | None]  # everything held about the address, as JSON
    erase: Callable[[str, datetime], object]
    stats: Callable[[datetime], dict[str, Any]]
    # A new episode of pain reported for the person (after its symptoms were saved): the
    # series they finished or left start again where their campaigns allow it.
    on_new_episode: Callable[[Connection, int, datetime], enrollment.Reentry]
    requests_per_minute: int = 600


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key from `clinicmail apikeys create NAME --scope …`.",
)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: described("The body could not be read as JSON."),
    401: described("No key, or a key that is unknown or revoked."),
    403: described("The key lacks the scope this route needs."),
    422: described("The request is not valid; each bad field is named in `errors`."),
    429: described("Too many requests with this key; wait for `Retry-After` seconds."),
}
NOT_HELD = described("Nobody with this id or address is held.")
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retry safely: the first answer under this key is replayed for 24 hours.",
    ),
]
SubscriberId = Annotated[str, Path(pattern=PUBLIC_ID, description="The person's opaque id.")]
Cursor = Annotated[
    str | None, Query(max_length=64, description="From the previous page's `next_cursor`.")
]
Limit = Annotated[int, Query(ge=1, le=200)]


class AuditedRoute(APIRoute):
    """Logs each use of a key (its route template and the answer's status) once answered."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        path = self.path

        async def audited(request: Request) -> Response:
            status = 500
            try:
                response = await handler(request)
                status = response.status_code
                return response
            except Problem as exc:
                status = exc.status
                raise
            except Exception as exc:
                status = int(getattr(exc, "status_code", 500))
                raise
            finally:
                used: tuple[Database, ApiKey] | None = getattr(request.state, "api_key", None)
                if used is not None:
                    db, key = used
                    await run_in_threadpool(_record, db, key, request.method, path, status)

        return audited


def _record(db: Database, key: ApiKey, method: str, route: str, status: int) -> None:
    with db.begin() as conn:
        keys.record_use(conn, key.id, method, route, status, datetime.now(UTC))


def _encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(f"c{value}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("c") and text[1:].isdigit() and len(text) < 20:
            return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Problem(422, "The cursor is not one this API gave out.")


def _ports(request: Request) -> ApiPorts:
    """The composition root's ports, which :func:`install` puts on the app."""
    ports: ApiPorts = request.app.state.api_ports
    return ports


Ports = Annotated[ApiPorts, Depends(_ports)]
router = APIRouter(prefix=PREFIX, tags=["API v1"], route_class=AuditedRoute, responses=ERRORS)


def _require(scope: str) -> Callable[..., ApiKey]:
    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> ApiKey:
        ports = _ports(request)
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Problem(
                401,
                "Send an API key as 'Authorization: Bearer KEY'.",
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        with ports.db.begin() as conn:
            key = keys.authenticate(conn, credentials.credentials.strip())
        if key is None:
            raise Problem(
                401,
                "This API key is not valid (unknown or revoked).",
                headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
            )
        request.state.api_key = (ports.db, key)
        if request.app.state.api_limiter.allow(str(key.id)):  # seconds to wait: refused
            raise Problem(
                429,
                "Too many requests with this key: try again in a minute.",
                headers={"Retry-After": "60"},
            )
        if scope not in key.scopes:
            raise Problem(403, f"This key lacks the scope {scope!r}.")
        return key

    return check


Reader = Annotated[ApiKey, Depends(_require(keys.SUBSCRIBERS_READ))]
Writer = Annotated[ApiKey, Depends(_require(keys.SUBSCRIBERS_WRITE))]
EventWriter = Annotated[ApiKey, Depends(_require(keys.EVENTS_WRITE))]
StatsReader = Annotated[ApiKey, Depends(_require(keys.STATS_READ))]
HookManager = Annotated[ApiKey, Depends(_require(keys.WEBHOOKS_MANAGE))]


def _once(
    ports: ApiPorts,
    key: ApiKey,
    idem: str | None,
    request: Request,
    body: BaseModel | None,
    work: Callable[[], tuple[int, Any]],
) -> Response:
    """Run ``work`` (→ status, JSON-able answer) unless this Idempotency-Key already has
    an answer, which is replayed."""
    if idem is None:
        status, answer = work()
        return Response(orjson.dumps(answer), status, media_type="application/json")
    text = body.model_dump_json() if body is not None else ""
    hashed = idempotency.request_hash(request.method, request.url.path, text)
    now = datetime.now(UTC)
    with ports.db.begin() as conn:
        found = idempotency.stored(conn, key.id, idem, now)
    if found is not None:
        if found[0] != hashed:
            raise Problem(
                422, "This Idempotency-Key was used for a different request; use a new key."
            )
        return Response(
            found[2],
            found[1],
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    status, answer = work()
    data = orjson.dumps(answer)
    with ports.db.begin() as conn:
        idempotency.store(conn, key.id, idem, hashed, status, data.decode(), now)
    return Response(data, status, media_type="application/json")


def _person_json(conn: Connection, sid: int) -> dict[str, Any]:
    p = store.profiles(conn, [sid])[sid]
    return Subscriber(
        id=p.public_id,
        email=p.email,
        first_name=p.first_name,
        status=p.status,
        symptoms=sorted(p.symptoms),
        timezone=p.timezone,
        red_flag=p.red_flag,
        arm_and_leg=p.arm_and_leg,
        confirmed_at=p.confirmed_at,
        paused_until=p.paused_until,
        series=enrollment.active_campaign_ids(conn, sid),
        goals=sorted(goals.reached_among(conn, [sid]).get(sid, set())),
        episodes=enrollment.episodes_of(conn, sid),
    ).model_dump(mode="json")


def _held(conn: Connection, public_id: str) -> int:
    sid = store.by_public_id(conn, public_id)
    if sid is None:
        raise Problem(404, "Nobody with this id is held.")
    return sid


def _email_of(conn: Connection, sid: int) -> str:
    return store.profiles(conn, [sid])[sid].email


# -- subscribers -------------------------------------------------------------------------
@router.post(
    "/subscribers/lookup",
    response_model=Subscriber,
    responses={404: NOT_HELD},
    summary="Find a person by email (in the body, never the URL)",
)
def lookup(ports: Ports, body: Lookup, key: Reader) -> dict[str, Any]:
    with ports.db.begin() as conn:
        sid = store.by_email_key(conn, body.email.lower())
        if sid is None:
            raise Problem(404, "Nobody with this address is held.")
        return _person_json(conn, sid)


@router.get(
    "/subscribers/{subscriber_id}",
    response_model=Subscriber,
    responses={404: NOT_HELD},
    summary="A person by their opaque id",
)
def get_subscriber(ports: Ports, subscriber_id: SubscriberId, key: Reader) -> dict[str, Any]:
    with ports.db.begin() as conn:
        return _person_json(conn, _held(conn, subscriber_id))


@router.get(
    "/subscribers", response_model=SubscriberPage, summary="Everyone held, a page at a time"
)
def list_subscribers(
    ports: Ports, key: Reader, cursor: Cursor = None, limit: Limit = PAGE
) -> dict[str, Any]:
    after = _decode_cursor(cursor)
    with ports.db.begin() as conn:
        ids = store.ids_after(conn, after, limit + 1)
        page = ids[:limit]
        return {
            "items": [_person_json(conn, sid) for sid in page],
            "next_cursor": _encode_cursor(page[-1]) if len(ids) > limit else None,
        }


@router.post(
    "/subscribers",
    status_code=202,
    response_model=Accepted,
    summary="Sign someone up (double opt-in, as the signup form)",
)
def create_subscriber(
    ports: Ports,
    body: Annotated[SignupRequest, Body()],
    request: Request,
    key: Writer,
    idem: IdempotencyKey = None,
) -> Response:
    """Stored before the answer: a confirmation email goes to the address and nothing
    else until it is confirmed. An address already held changes nothing until its owner
    confirms; warning signs route the person to the safety email, never a drip."""

    def work() -> tuple[int, Any]:
        now = datetime.now(UTC)
        ip = request.client.host if request.client else None
        with ports.db.begin() as conn:
            confirmation = register(conn, body, now=now, ip=ip, user_agent=f"api key {key.name}")
            if confirmation is not None:
                ports.on_signup(conn, confirmation, now)
        answer: dict[str, Any] = {"status": "accepted", "message": ACCEPTED_MESSAGE}
        if has_red_flag(body.symptoms):
            answer["urgent_care"] = URGENT_CARE
        return 202, answer

    return _once(ports, key, idem, request, body, work)


@router.patch(
    "/subscribers/{subscriber_id}",
    response_model=Subscriber,
    responses={404: NOT_HELD},
    summary="Change a person's symptoms or pause",
)
def change_subscriber(
    ports: Ports, subscriber_id: SubscriberId, body: ChangeIn, key: Writer
) -> dict[str, Any]:
    now = datetime.now(UTC)
    with ports.db.begin() as conn:
        sid = _held(conn, subscriber_id)
        if "paused_until" in body.model_fields_set:
            changes.set_pause(conn, sid, body.paused_until, now)
        if body.symptoms is not None:
            changed = changes.change_symptoms(
                conn, sid, body.symptoms, now, source=f"api:{key.name}"
            )
            if changed is not None and store.profiles(conn, [sid])[sid].status == store.CONFIRMED:
                ports.on_confirmed(conn, [sid], now)
        return _person_json(conn, sid)


@router.post(
    "/subscribers/{subscriber_id}/episodes",
    response_model=EpisodeOut,
    responses={
        404: NOT_HELD,
        409: described("The person is not confirmed (unconfirmed or unsubscribed)."),
    },
    summary="Report a new episode of pain: finished or left series start again",
)
def new_episode(
    ports: Ports,
    subscriber_id: SubscriberId,
    body: EpisodeIn,
    request: Request,
    key: Writer,
    idem: IdempotencyKey = None,
) -> Response:
    """Saves the episode's symptoms (when given), then starts again from week 1 every
    series the person finished or left whose campaign allows re-entry
    (`reentry_after_days`) once that many days passed since it ended; `not_yet` names the
    others with the earliest moment. The weekly cap still holds. Warning signs among the
    symptoms route the person to the safety email instead."""

    def work() -> tuple[int, Any]:
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            sid = _held(conn, subscriber_id)
            if store.profiles(conn, [sid])[sid].status != store.CONFIRMED:
                raise Problem(
                    409,
                    "Only a confirmed person can start a series again; a new signup "
                    "(double opt-in) is needed first.",
                )
            if body.symptoms is not None:
                changes.change_symptoms(conn, sid, body.symptoms, now, source=f"api:{key.name}")
            # Not in the audit log: that a person's pain came back is health data, kept
            # only in their own rows (the enrollment's episode), which erasure removes.
            again = ports.on_new_episode(conn, sid, now)
            answer = EpisodeOut(
                started=list(again.started),
                not_yet=[NotYet(campaign_id=cid, earliest_at=at) for cid, at in again.not_yet],
                subscriber=Subscriber.model_validate(_person_json(conn, sid)),
            )
        return 200, answer.model_dump(mode="json")

    return _once(ports, key, idem, request, body, work)


@router.post(
    "/subscribers/{subscriber_id}/unsubscribe",
    response_model=Subscriber,
    responses={404: NOT_HELD},
    summary="Unsubscribe a person from all email",
)
def unsubscribe(
    ports: Ports,
    subscriber_id: SubscriberId,
    request: Request,
    key: Writer,
    idem: IdempotencyKey = None,
) -> Response:
    def work() -> tuple[int, Any]:
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            sid = _held(conn, subscriber_id)
            if store.unsubscribe(conn, sid, now, source=f"api:{key.name}"):
                ports.on_unsubscribed(conn, sid, now)
            return 200, _person_json(conn, sid)

    return _once(ports, key, idem, request, None, work)


@router.get(
    "/subscribers/{subscriber_id}/export",
    responses={
        200: {"description": "Everything held about the person (data portability)."},
        404: NOT_HELD,
    },
    summary="Everything held about a person",
)
def export(ports: Ports, subscriber_id: SubscriberId, key: Reader) -> Response:
    with ports.db.begin() as conn:
        address = _email_of(conn, _held(conn, subscriber_id))
    data = ports.export(address)
    if data is None:
        raise Problem(404, "Nobody with this id is held.")
    return Response(data, media_type="application/json")


@router.post(
    "/subscribers/{subscriber_id}/erase",
    response_model=Done,
    responses={404: NOT_HELD},
    summary="Erase a person (only a one-way hash stays on the suppression list)",
)
def erase(
    ports: Ports,
    subscriber_id: SubscriberId,
    request: Request,
    key: Writer,
    idem: IdempotencyKey = None,
) -> Response:
    def work() -> tuple[int, Any]:
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            address = _email_of(conn, _held(conn, subscriber_id))
        ports.erase(address, now)
        with ports.db.begin() as conn:
            audit.record(
                conn,
                None,
                "subscriber.erase",
                "subscriber",
                subscriber_id,
                now,
                {"by": f"api:{key.name}"},
            )
        return 200, {"status": "erased"}

    return _once(ports, key, idem, request, None, work)


# -- events ------------------------------------------------------------------------------
@router.post(
    "/events",
    status_code=202,
    response_model=Done,
    summary="Something happened to a person elsewhere (booked, attended, discharged …)",
)
def post_event(
    ports: Ports, body: EventIn, request: Request, key: EventWriter, idem: IdempotencyKey = None
) -> Response:
    """Recorded for the person it names (nothing happens for an address nobody holds). A
    series whose goal is this type sends them none of its booking steps from the next
    tick; receivers of `goal.reached` hear of it."""
    if (body.email is None) == (body.subscriber_id is None):
        raise Problem(422, "Name the person by exactly one of email or subscriber_id.")

    def work() -> tuple[int, Any]:
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            if body.email is not None:
                sid = store.by_email_key(conn, body.email.lower())
            else:
                sid = store.by_public_id(conn, body.subscriber_id or "")
            if sid is not None:
                reached = goals.record(
                    conn,
                    ports.catalog(),
                    sid,
                    body.type,
                    occurred_at=body.occurred_at or now,
                    now=now,
                    source=f"api:{key.name}",
                )
                if reached.campaign_ids:
                    public_id = store.profiles(conn, [sid])[sid].public_id
                    outgoing_events.emit(
                        conn,
                        outgoing_events.GOAL_REACHED,
                        {
                            "subscriber_id": public_id,
                            "goal": body.type,
                            "campaign_ids": list(reached.campaign_ids),
                        },
                        now,
                    )
        return 202, {"status": "accepted"}

    return _once(ports, key, idem, request, body, work)


# -- campaigns and stats -----------------------------------------------------------------
@router.get("/campaigns", response_model=CampaignPage, summary="The series and their steps")
def list_campaigns(
    ports: Ports, key: StatsReader, cursor: Cursor = None, limit: Limit = PAGE
) -> dict[str, Any]:
    after = _decode_cursor(cursor) or 0
    every = sorted(ports.catalog(), key=lambda c: c.id)
    page = every[after : after + limit]
    return {
        "items": [
            Campaign(
                id=c.id,
                name=c.meta.name,
                status=c.meta.status,
                goal=c.meta.goal,
                goal_follow_up=c.meta.goal_follow_up,
                goal_window_days=c.meta.goal_window_days,
                reentry_after_days=c.meta.reentry_after_days,
                steps=[Step(id=s.id, number=s.number, until_goal=s.until_goal) for s in c.steps],
            ).model_dump(mode="json")
            for c in page
        ],
        "next_cursor": _encode_cursor(after + limit) if after + limit < len(every) else None,
    }


@router.get(
    "/stats",
    responses={200: {"description": "The figures of `clinicmail stats --json`."}},
    summary="Engagement per campaign and step",
)
def stats(ports: Ports, key: StatsReader) -> Response:
    return Response(
        orjson.dumps(ports.stats(datetime.now(UTC)), default=str),
        media_type="application/json",
    )


# -- webhooks ----------------------------------------------------------------------------
def _hook_json(e: queue.Endpoint) -> dict[str, Any]:
    return Webhook(
        id=e.public_id,
        url=e.url,
        events=list(e.events),
        active=e.active,
        created_at=e.created_at,
        failing_since=e.failing_since,
        disabled_at=e.disabled_at,
        disabled_reason=e.disabled_reason,
        last_status_code=e.last_status_code,
        last_attempt_at=e.last_attempt_at,
    ).model_dump(mode="json")


def _endpoint_of(conn: Connection, webhook_id: str) -> queue.Endpoint:
    found = queue.endpoint(conn, webhook_id)
    if found is None or found.public_id != webhook_id:
        raise Problem(404, "No webhook endpoint has this id.")
    return found


WebhookId = Annotated[str, Path(pattern=r"^whe_[0-9a-f]{16}$")]


@router.get("/webhooks", response_model=WebhookPage, summary="The registered webhook endpoints")
def list_webhooks(ports: Ports, key: HookManager) -> dict[str, Any]:
    with ports.db.begin() as conn:
        return {"items": [_hook_json(e) for e in queue.endpoints(conn)], "next_cursor": None}


@router.post(
    "/webhooks",
    status_code=201,
    response_model=NewWebhook,
    summary="Register an endpoint (its signing secret is shown once)",
)
def add_webhook(
    ports: Ports, body: WebhookIn, request: Request, key: HookManager, idem: IdempotencyKey = None
) -> Response:
    def work() -> tuple[int, Any]:
        now = datetime.now(UTC)
        try:
            with ports.db.begin() as conn:
                made, secret = queue.add(conn, body.url, body.events, now)
                audit.record(
                    conn,
                    None,
                    "webhook.add",
                    "webhook",
                    made.public_id,
                    now,
                    {"by": f"api:{key.name}", "events": list(made.events)},
                )
        except (queue.WebhookError, outgoing_events.UnknownEventType) as exc:
            raise Problem(422, str(exc)) from None
        return 201, {**_hook_json(made), "secret": secret}

    return _once(ports, key, idem, request, body, work)


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    responses={404: described("No webhook endpoint has this id.")},
    summary="Remove an endpoint and its deliveries",
)
def remove_webhook(ports: Ports, webhook_id: WebhookId, key: HookManager) -> Response:
    now = datetime.now(UTC)
    with ports.db.begin() as conn:
        queue.remove(conn, _endpoint_of(conn, webhook_id).public_id)
        audit.record(
            conn, None, "webhook.remove", "webhook", webhook_id, now, {"by": f"api:{key.name}"}
        )
    return Response(status_code=204)


def _delivery_json(d: queue.Delivery) -> dict[str, Any]:
    return Delivery(
        id=d.id,
        event_id=d.event_id,
        event_type=d.event_type,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_attempt_at=d.last_attempt_at,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        payload=orjson.loads(d.body),
    ).model_dump(mode="json")


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses={404: described("No webhook endpoint has this id.")},
    summary="An endpoint's deliveries, newest first, with their last attempts",
)
def list_deliveries(
    ports: Ports,
    webhook_id: WebhookId,
    key: HookManager,
    cursor: Cursor = None,
    limit: Limit = PAGE,
) -> dict[str, Any]:
    before = _decode_cursor(cursor)
    with ports.db.begin() as conn:
        found = _endpoint_of(conn, webhook_id)
        rows = queue.deliveries(conn, found.id, after=before, limit=limit + 1)
    page = rows[:limit]
    return {
        "items": [_delivery_json(d) for d in page],
        "next_cursor": _encode_cursor(page[-1].id) if len(rows) > limit else None,
    }


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=Delivery,
    responses={404: described("No such endpoint or delivery.")},
    summary="Send a delivery again (same id and body)",
)
def replay(
    ports: Ports,
    webhook_id: WebhookId,
    delivery_id: Annotated[int, Path(ge=1, le=2**62)],
    request: Request,
    key: HookManager,
    idem: IdempotencyKey = None,
) -> Response:
    def work() -> tuple[int, Any]:
        now = datetime.now(UTC)
        with ports.db.begin() as conn:
            found = _endpoint_of(conn, webhook_id)
            existing = queue.delivery(conn, delivery_id)
            if existing is None or existing.endpoint_id != found.id:
                raise Problem(404, "This endpoint has no such delivery.")
            return 202, _delivery_json(queue.replay(conn, delivery_id, now))

    return _once(ports, key, idem, request, None, work)


def install(app: FastAPI, ports: ApiPorts) -> None:
    """Mount ``/api/v1`` and answer its errors as problems. The routes are built once, at
    import; an app's ports and its per-key rate limit live on the app."""
    app.state.api_ports = ports
    app.state.api_limiter = Throttle(ports.requests_per_minute, 60.0)
    install_handlers(app)
    add_routes(app, router)


__all__ = ["PROBLEM_JSON", "ApiPorts", "install"]
