"""The HTTP app: health, and the routes each domain package owns, mounted here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Connection

from campaigns import enrollment
from console.ports import ConsolePorts
from console.web import install as install_console
from engagement import complaints
from engagement.keep import KeepPorts
from engagement.keep import router as keep_router
from engagement.web import EngagementPorts
from engagement.web import router as engagement_router
from engagement.webhook import sendgrid_router
from scheduler.context import AppContext
from scheduler.onboarding import on_confirmed, on_signup, queue_checkin_followup
from subscribers.web import SubscriberPorts
from subscribers.web import router as subscriber_router


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
        if ok:  # one primary-key read: is campaign email paused for spam complaints?
            with ctx.db.begin() as conn:
                body["campaigns_paused"] = complaints.is_paused(conn)
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        registry, _ = ctx.metrics
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def confirmed(conn: Connection, ids: list[int], now: datetime) -> None:
        on_confirmed(conn, ctx.catalog, ids, now, staff_email=ctx.settings.staff_email)

    def unsubscribed(conn: Connection, sid: int, now: datetime) -> None:
        enrollment.leave_all(conn, sid, now)

    def series_of(conn: Connection, sid: int) -> list[tuple[str, str]]:
        names = {c.id: c.meta.name for c in ctx.catalog}
        return [(cid, names.get(cid, cid)) for cid in enrollment.active_campaign_ids(conn, sid)]

    def signed_up(conn: Connection, sid: int, now: datetime) -> None:
        on_signup(conn, sid, now, staff_email=ctx.settings.staff_email)

    app.include_router(sendgrid_router(ctx.db, ctx.settings.sendgrid_webhook_public_key))
    app.include_router(
        keep_router(KeepPorts(db=ctx.db, tokens=ctx.tokens, clinic_name=ctx.settings.clinic_name))
    )
    app.include_router(
        engagement_router(
            EngagementPorts(
                db=ctx.db,
                signer=ctx.link_signer,
                clinic_name=ctx.settings.clinic_name,
                booking_url=ctx.settings.booking_link,
                tracking=ctx.settings.tracking == "on",
                on_worse=lambda conn, sid, send_id, now: queue_checkin_followup(
                    conn, sid, send_id, now, staff_email=ctx.settings.staff_email
                ),
            )
        )
    )
    app.include_router(
        subscriber_router(
            SubscriberPorts(
                db=ctx.db,
                tokens=ctx.tokens,
                clinic_name=ctx.settings.clinic_name,
                on_confirmed=confirmed,
                on_unsubscribed=unsubscribed,
                on_signup=signed_up,
                series_of=series_of,
                on_leave_series=lambda conn, sid, cid, now: enrollment.leave(conn, sid, cid, now),
            )
        )
    )
    # The staff console last: its catch-all keeps every other /admin path behind the sign-in.
    install_console(app, console_ports(ctx))
    return app


def console_ports(ctx: AppContext) -> ConsolePorts:
    from scheduler.commands.subscribers import record_sections
    from scheduler.console_services import console_services
    from scheduler.testsend import send_test

    return ConsolePorts(
        db=ctx.db,
        secure_cookies=ctx.settings.base_url.startswith("https://"),
        record_sections=record_sections(),
        renderer=ctx.renderer,
        base_url=ctx.settings.base_url,
        review_interval=ctx.settings.review_every,
        content_changed=ctx.refresh_content,
        send_test=lambda to, rendered, values: send_test(ctx, to, rendered, values),
        services=console_services(ctx),
    )
