"""Mount the operating pages (console part 2): dashboard actions, newsletters, outbox and ops.
People's router is mounted by :mod:`console.web` with the rest of part 1's."""

from __future__ import annotations

from fastapi import FastAPI

from console import dashboard, integrations, newsletters, ops, outbox


def include(app: FastAPI) -> None:
    app.include_router(dashboard.router)
    app.include_router(newsletters.router)
    app.include_router(outbox.router)
    app.include_router(ops.router)
    app.include_router(integrations.router)
