"""Mount the console on the app: its routers, the guard's answers, the gated API docs.

Call :func:`install` from the composition root after every other router is included (the
console's catch-all for ``/admin/...`` must come last), with the app created with
``docs_url=None, redoc_url=None, openapi_url=None``.

Each page group is one module-level ``router``; what its routes need (the ports, the database,
the signed-in staff member) they ask for as FastAPI dependencies (:mod:`console.deps`,
:mod:`console.auth`).
"""

from __future__ import annotations

from fastapi import FastAPI

from console import (
    campaigns,
    clinic_settings,
    docs,
    followups,
    home,
    importing,
    login,
    operate,
    people,
    review_screen,
)
from console.auth import forbidden, not_found, sign_in_required
from console.errors import Forbidden, NotFound, SignInRequired
from console.ports import ConsolePorts
from core.routes import add_routes


def install(app: FastAPI, ports: ConsolePorts) -> None:
    app.state.console_ports = ports
    if ports.services is not None:  # every signed-in page shows what stops delivery
        app.state.console_banner = ports.services.banner
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(NotFound, not_found)
    add_routes(app, login.router)
    add_routes(app, home.router)
    add_routes(app, people.router)
    if ports.renderer is not None:
        add_routes(app, campaigns.router)
        add_routes(app, review_screen.router)
    operate.include(app)  # dashboard, newsletters, outbox, ops
    add_routes(app, followups.router)
    add_routes(app, clinic_settings.router)
    add_routes(app, importing.router)
    add_routes(app, docs.router)
    add_routes(app, home.catch_all)
