"""Mount the operating pages (console part 2): dashboard actions, people, newsletters, outbox
and ops. People's router is mounted by :mod:`console.web` with the rest of part 1's."""

from __future__ import annotations

from fastapi import FastAPI

from console import dashboard, integrations, newsletters, ops, outbox
from console.ports import ConsolePorts


def include(app: FastAPI, ports: ConsolePorts) -> None:
    app.include_router(dashboard.router(ports))
    app.include_router(newsletters.router(ports))
    app.include_router(outbox.router(ports))
    app.include_router(ops.router(ports))
    app.include_router(integrations.router(ports))
