"""Logging for the long-running commands: readable text or one JSON object per line (structlog).

Every record, ours or a library's, goes through :func:`redact`, a last line of defence for
DESIGN.md invariant 7: our own code never logs an address, a name or a symptom, but a library's
error message might quote a recipient, so anything shaped like an email address is masked.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if isinstance(value, str) and "@" in value:
            event[key] = _EMAIL.sub("[address]", value)
    return event


def configure(fmt: str = "text", level: str = "INFO") -> None:
    """Route the standard library's logging through structlog's formatter, on stderr."""
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDK's HTTP client logs request bodies at DEBUG; never let them through.
    logging.getLogger("python_http_client").setLevel(logging.WARNING)
