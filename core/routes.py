"""How a package's web routes join the app: :func:`add_routes`, in place of
``app.include_router``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put ``router``'s routes on ``app`` as they were built.

    For a router it includes, FastAPI builds every route's handler a second time (each
    dependency resolved and each parameter's model made again) on the app's first request, and
    does so for each app. The routers here carry their path prefix, tags and responses
    themselves and are included with nothing added, so their routes are added as they are: the
    console's and the API's, built once at import, are shared by every app in the process, and
    an app answers its first request without that second build. A route added this way does
    not see the app's ``dependency_overrides``; a test that hands a router its own dependencies
    mounts it with ``include_router``."""
    app.router.routes.extend(router.routes)
