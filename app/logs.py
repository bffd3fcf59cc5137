"""Logging for the long-running commands: readable text or one JSON object per line (structlog).

Every record, ours or a library's (uvicorn's included), goes through :func:`redact`, a last line
of defence: our own code never logs an address, a name or a symptom, but a library's error
message might quote a recipient or a database might quote a row, so anything shaped like an
email address and any value a database quotes back is masked. SQL parameters never get this
far: the engine hides them (``hide_parameters``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Anything shaped like an address: every character RFC 5322 allows in a local part (o'brien+tag,
# {ann}~!), or a quoted one, at a dotted domain or an address literal.
_EMAIL = re.compile(
    r"""(?:"[^"\n]+"|[\w.!#$%&'*+/=?^`{|}~-]+)@(?:[\w-]+(?:\.[\w-]+)+|\[[^\]\s]+\])"""
)
# Values a database quotes back in its own error messages: PostgreSQL's "Key (email_key)=(…)"
# and "Failing row contains (…)", and SQLAlchemy's "[parameters: …]" (the engine hides them
# too; this also covers an engine built elsewhere).
_QUOTED_VALUES = (
    (
        re.compile(r"(Key \([^)]*\)=\().*?(\) (?:already exists|is not present|conflicts))"),
        r"\1…\2",
    ),
    (re.compile(r"(Failing row contains \().*(\))"), r"\1…\2"),
    (re.compile(r"\[parameters: [^\n]*"), "[parameters: hidden]"),
)


def redact_text(text: str) -> str:
    """Mask addresses and database-quoted values in one string."""
    if "@" in text:
        text = _EMAIL.sub("[address]", text)
    for pattern, replacement in _QUOTED_VALUES:
        text = pattern.sub(replacement, text)
    return text


# Extras some libraries attach for their own coloured console (uvicorn's ``color_message``, the
# message again with terminal escapes): never part of a line we write.
_DROPPED_EXTRAS = ("color_message",)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name in _DROPPED_EXTRAS:
        event.pop(name, None)
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = redact_text(value)
    return event


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def configure(fmt: str = "text", level: str = "INFO") -> None:
    """Route the standard library's logging through structlog's formatter, on stderr."""
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    # Colour codes only for a person at a terminal; a file, a pipe or journald gets plain text.
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=_is_terminal(sys.stderr))
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # A traceback becomes plain text here, so redaction sees it, and no renderer can
            # print local variables (which may hold a person's data).
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # HTTP clients log request bodies (the SendGrid SDK's, at DEBUG) or full URLs, whose
    # paths may carry signed tokens (httpx, at INFO); never let them through.
    for name in ("python_http_client", "httpx", "httpx2", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's loggers (when it is told log_config=None) and any library's: no handlers of
    # their own, so every line reaches the one handler above.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "sqlalchemy"):
        named = logging.getLogger(name)
        named.handlers[:] = []
        named.propagate = True
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logging.getLogger(name).setLevel(level)  # CLINICMAIL_LOG_LEVEL governs uvicorn's lines
