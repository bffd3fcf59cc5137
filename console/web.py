"""Mount the console on the app: its routers, the guard's answers, the gated API docs.

Call :func:`install` from the composition root after every other router is included (the
console's catch-all for ``/admin/...`` must come last), with the app created with
``docs_url=None, redoc_url=None, openapi_url=None``.
"""

from __future__ import annotations

from fastapi import FastAPI

from console import (
    campaigns,
    clinic_settings,
    docs,
    home,
    importing,
    login,
    operate,
    people,
    review_screen,
)
from console.auth import (
    Forbidden,
    NotFound,
    SignInRequired,
    forbidden,
    not_found,
    sign_in_required,
)
from console.ports import ConsolePorts


def install(app: FastAPI, ports: ConsolePorts) -> None:
    app.state.console_db = ports.db
    app.state.console_ports = ports  # for the routers defined at module level
    if ports.services is not None:  # every signed-in page shows what stops delivery
        app.state.console_banner = ports.services.banner
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(NotFound, not_found)
    app.include_router(login.router(ports))
    app.include_router(home.router(ports))
    app.include_router(people.router(ports))
    if ports.renderer is not None:
        app.include_router(campaigns.router(ports))
        app.include_router(review_screen.router(ports))
    operate.include(app, ports)  # dashboard, newsletters, outbox, ops
    app.include_router(clinic_settings.router)
    app.include_router(importing.router)
    app.include_router(docs.router(app, ports))
    app.include_router(home.catch_all(ports))
