"""What a console route asks FastAPI for: the ports the composition root installed, and the
parts of them a route uses (the database, the renderer, the operating services).

Every route is defined at module level and names these as parameters, so a test can mount one
router on a bare app and hand it its own ports with ``app.dependency_overrides[ports]``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from console.errors import NotFound
from console.ports import ConsolePorts
from console.services import Services
from storage import Database
from templates import Renderer


def ports(request: Request) -> ConsolePorts:
    """The ports :func:`console.web.install` put on the app."""
    installed: ConsolePorts = request.app.state.console_ports
    return installed


Ports = Annotated[ConsolePorts, Depends(ports)]


def database(p: Ports) -> Database:
    return p.db


Db = Annotated[Database, Depends(database)]


def services(p: Ports) -> Services:
    """The operating seams; a console mounted without them answers 404 on those pages."""
    if p.services is None:
        raise NotFound("Not available", "This console was started without the service.")
    return p.services


Svc = Annotated[Services, Depends(services)]


def renderer(p: Ports) -> Renderer:
    if p.renderer is None:
        raise NotFound("Not available", "This console was started without the email renderer.")
    return p.renderer


Render = Annotated[Renderer, Depends(renderer)]
