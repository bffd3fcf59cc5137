"""Calling an optional seam from an ops page, the same way everywhere: a seam the composition
root did not install answers 404 ("not available here"); a request it refuses (``ValueError``
or ``InputError``, whose message is one plain line) answers 422 with "Not <verb>: <reason>."
on the page, nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi.responses import Response

from core.errors import InputError

T = TypeVar("T")
# The page that says it: (message, status) → response.
Refusal = Callable[[str, int], Response]


def call_seam(
    seam: Callable[..., T] | None,
    *args: Any,
    verb: str,
    refuse: Refusal,
    refused_status: int = 422,
) -> T | Response:
    """``seam(*args)``, or the page that says why not (see the module)."""
    if seam is None:
        return refuse("Not available here.", 404)
    try:
        return seam(*args)
    except (ValueError, InputError) as exc:
        reason = str(exc).strip().rstrip(".")
        return refuse(f"Not {verb}: {reason}.", refused_status)
