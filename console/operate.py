"""Mount the operating pages (console part 2): dashboard actions, newsletters, outbox and ops.
People's router is mounted by :mod:`console.web` with the rest of part 1's."""

from __future__ import annotations

from fastapi import FastAPI

from console import dashboard, integrations, newsletters, ops, outbox
from core.routes import add_routes


def include(app: FastAPI) -> None:
    add_routes(app, dashboard.router)
    add_routes(app, newsletters.router)
    add_routes(app, outbox.router)
    add_routes(app, ops.router)
    add_routes(app, integrations.router)
