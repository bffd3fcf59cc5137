"""The HTTP app: health, and the routes each domain package owns, mounted here."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from html import escape
from ipaddress import ip_address

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from sqlalchemy import Connection
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.web import ApiPorts
from api.web import install as install_api
from app.bodylimit import KIB, BodyLimit
from app.context import AppContext
from app.errors import ErrorPages
from app.headers import SecurityHeaders
from app.onboarding import on_confirmed, on_new_episode, on_signup, queue_checkin_followup
from campaigns import enrollment
from console.auth import SESSION_COOKIE
from console.ports import ConsolePorts
from console.web import install as install_console
from core.routes import add_routes
from engagement import complaints
from engagement import own as own_events
from engagement.keep import KeepPorts
from engagement.keep import router as keep_router
from engagement.web import EngagementPorts
from engagement.web import router as engagement_router
from engagement.webhook import sendgrid_router
from scheduler.breaker import KEY as BREAKER_KEY
from scheduler.breaker import BreakerState
from staff import sessions
from storage import kvstate, utcnow
from subscribers.web import SubscriberPorts, page
from subscribers.web import router as subscriber_router

# Request bodies, in bytes: a signup or a form is a few hundred; SendGrid's event batches are
# well under a megabyte; the staff console (signed in) may upload content.
BODY_LIMIT = 64 * KIB
BODY_LIMITS = (("/webhooks/", 4 * 1024 * KIB), ("/admin/", 2 * 1024 * KIB))


def metrics_refusal(request: Request, token: SecretStr | None) -> Response | None:
    """Who may read ``/metrics``: its gauges move when someone signs up or leaves, so strangers
    must not watch them. With ``CLINICMAIL_METRICS_TOKEN``, a request bearing it (Prometheus's
    ``authorization`` / ``bearer_token`` setting); without one, loopback clients only."""
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode("utf-8")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8"), expected
        ):
            return None
        return JSONResponse(
            {"detail": "a bearer token is required"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    try:
        loopback = ip_address(request.client.host if request.client else "").is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return JSONResponse(
        {"detail": "metrics answer only on loopback until CLINICMAIL_METRICS_TOKEN is set"},
        status_code=403,
    )


def staff_browser(conn: Connection, cookies: Mapping[str, str]) -> bool:
    """Whether these cookies hold a live console session: a staff browser, whose opens and
    clicks are never recorded as engagement."""
    return sessions.resolve(conn, cookies.get(SESSION_COOKIE), utcnow()) is not None


def create_app(
    ctx: AppContext, *, lifespan_hooks: tuple[Callable[[], None], Callable[[], None]] | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if lifespan_hooks:
            lifespan_hooks[0]()
        try:
            yield
        finally:
            if lifespan_hooks:
                lifespan_hooks[1]()

    # The catalog is loaded now, as `serve` does at start-up: loaded lazily inside a request's
    # open write transaction (confirming, the preference centre), SQLite's lock would make the
    # load wait out the whole busy timeout before falling back to the library folder.
    _ = ctx.catalog
    # The API docs are served by the console, to signed-in staff only (console.docs).
    app = FastAPI(
        title="clinicmail",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        ok = ctx.db.ping()
        body: dict[str, object] = {"status": "ok" if ok else "unavailable", "database": ok}
        if ok:  # primary-key reads: is campaign email paused for complaints, is sending paused?
            with ctx.db.begin() as conn:
                body["campaigns_paused"] = complaints.is_paused(conn)
                paused = BreakerState.load(kvstate.read(conn, BREAKER_KEY)).paused
            body["delivery"] = {"paused": paused is not None, "reason": paused}
            if paused is not None:  # still 200: the service answers, but email does not go out
                body["status"] = "degraded"
                body["reason"] = paused
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def landing() -> HTMLResponse:
        """A small front door: the signup page for patients, the console for staff."""
        name = escape(ctx.settings.clinic_name)
        return page(
            name,
            f"<p>Weekly emails on back and neck care from {name}: why spasms happen, what helps "
            "in the first few days and how rehab works.</p>"
            '<p><a href="/signup">Sign up for the weekly emails</a></p>'
            '<p><a href="/admin/login">Staff sign-in</a></p>',
        )

    if ctx.settings.proxies:
        # Only these peers may say who the client is (X-Forwarded-For, X-Forwarded-Proto);
        # from anyone else the headers are ignored and the socket's address is the client's.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=ctx.settings.proxies)
    # Added last = outermost: bodies are counted before any route reads them, and any error
    # (a body limit's included) is answered plainly.
    app.add_middleware(BodyLimit, default=BODY_LIMIT, limits=BODY_LIMITS)
    app.add_middleware(ErrorPages)
    # Outermost of all, so error pages and 413s carry the headers too.
    app.add_middleware(SecurityHeaders, https=ctx.settings.base_url.startswith("https://"))

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        refused = metrics_refusal(request, ctx.settings.metrics_token)
        if refused is not None:
            return refused
        registry, _ = ctx.metrics
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def confirmed(conn: Connection, ids: list[int], now: datetime) -> None:
        on_confirmed(
            conn,
            ctx.catalog,
            ids,
            now,
            staff_email=ctx.settings.staff_email,
            followup=ctx.settings.followup,
        )

    def unsubscribed(conn: Connection, sid: int, now: datetime, send_id: str | None) -> None:
        enrollment.leave_all(conn, sid, now)
        if send_id is not None:  # counted in stats against the email whose link was used
            own_events.record_unsubscribe(conn, send_id, now)

    def series_of(conn: Connection, sid: int) -> list[tuple[str, str]]:
        names = {c.id: c.meta.name for c in ctx.catalog}
        return [(cid, names.get(cid, cid)) for cid in enrollment.active_campaign_ids(conn, sid)]

    def new_episode_names(
        conn: Connection, sid: int, now: datetime
    ) -> tuple[list[str], list[tuple[str, datetime]]]:
        names = {c.id: c.meta.name for c in ctx.catalog}
        again = on_new_episode(conn, ctx.catalog, sid, now, staff_email=ctx.settings.staff_email)
        return (
            [names.get(cid, cid) for cid in again.started],
            [(names.get(cid, cid), at) for cid, at in again.not_yet],
        )

    add_routes(app, sendgrid_router(ctx.db, ctx.settings.sendgrid_webhook_public_key))
    add_routes(
        app,
        keep_router(KeepPorts(db=ctx.db, tokens=ctx.tokens, clinic_name=ctx.settings.clinic_name)),
    )
    add_routes(
        app,
        engagement_router(
            EngagementPorts(
                db=ctx.db,
                tokens=ctx.tokens,
                clinic_name=ctx.settings.clinic_name,
                booking_url=ctx.settings.booking_link,
                tracking=ctx.settings.tracking == "on",
                staff_browser=staff_browser,
                care_lines=ctx.clinic.care_lines(),
                on_worse=lambda conn, sid, send_id, now: queue_checkin_followup(
                    conn,
                    sid,
                    send_id,
                    now,
                    staff_email=ctx.settings.staff_email,
                    followup=ctx.settings.followup,
                ),
            )
        ),
    )
    add_routes(
        app,
        subscriber_router(
            SubscriberPorts(
                db=ctx.db,
                tokens=ctx.tokens,
                clinic_name=ctx.settings.clinic_name,
                on_confirmed=confirmed,
                on_unsubscribed=unsubscribed,
                on_signup=on_signup,
                signup_seconds=ctx.settings.signup_answer_seconds,
                series_of=series_of,
                on_leave_series=lambda conn, sid, cid, now: enrollment.leave(conn, sid, cid, now),
                on_new_episode=new_episode_names,
                care_lines=ctx.clinic.care_lines(),
            )
        ),
    )
    install_api(app, api_ports(ctx, unsubscribed))
    # The staff console last: its catch-all keeps every other /admin path behind the sign-in.
    install_console(app, console_ports(ctx))
    return app


def signoff_pdf(ctx: AppContext, campaign_id: str) -> bytes:
    from app.signoff import build_pack, pdf_bytes

    return pdf_bytes(build_pack(ctx, campaign_id).html)


def api_ports(
    ctx: AppContext, unsubscribed: Callable[[Connection, int, datetime, str | None], None]
) -> ApiPorts:
    from app.privacy import erase_everywhere, export_json
    from app.stats import stats_json

    return ApiPorts(
        db=ctx.db,
        catalog=lambda: ctx.catalog,
        on_signup=on_signup,
        on_confirmed=lambda conn, ids, now: on_confirmed(
            conn,
            ctx.catalog,
            ids,
            now,
            staff_email=ctx.settings.staff_email,
            followup=ctx.settings.followup,
        ),
        on_unsubscribed=lambda conn, sid, now: unsubscribed(conn, sid, now, None),
        export=lambda email: export_json(ctx.db, email),
        erase=lambda email, now: erase_everywhere(ctx.db, email, now),
        stats=lambda now: stats_json(ctx, now),
        on_new_episode=lambda conn, sid, now: on_new_episode(
            conn, ctx.catalog, sid, now, staff_email=ctx.settings.staff_email
        ),
        requests_per_minute=ctx.settings.api_rate_limit,
    )


def console_ports(ctx: AppContext) -> ConsolePorts:
    from app.console_seams import clinic_settings_port, import_people
    from app.console_services import console_services
    from app.privacy import record_sections
    from app.testsend import send_test

    return ConsolePorts(
        db=ctx.db,
        secure_cookies=ctx.settings.base_url.startswith("https://"),
        # A person's follow-ups (what they reported, staff notes) are shown on the follow-ups
        # page to clinicians and ops only; their data export still carries them.
        record_sections={k: v for k, v in record_sections().items() if k != "followups"},
        renderer=ctx.renderer,
        base_url=ctx.settings.base_url,
        review_interval=ctx.settings.review_every,
        clinic_zone=lambda: ctx.settings.zone,
        content_changed=ctx.refresh_content,
        send_test=lambda to, rendered, values: send_test(ctx, to, rendered, values),
        signoff_pack=lambda campaign_id: signoff_pdf(ctx, campaign_id),
        services=console_services(ctx),
        clinic_settings=clinic_settings_port(ctx),
        import_people=import_people(ctx),
    )
