"""Option values that need more than a click type: symptom codes, times and segment rules. A bad value stops
the command with one line that says what was expected."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.cli.errors import fail
from core import yamltext
from subscribers.segments import EVERYONE, Rule, parse_rule


def read_password(prompt: str, *, confirm: bool) -> str:
    """A password from standard input when it is not a terminal (one line), else asked hidden
    (twice when ``confirm``)."""
    import sys

    import click

    if sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
    line = sys.stdin.readline()
    if not line:
        fail(
            "no password given: pipe it on standard input, e.g. printf '%s\\n' \"$PW\" | clinicmail …"
        )
    return line.rstrip("\r\n")


def parse_symptoms(value: str) -> frozenset[str]:
    """``--symptoms``: comma-separated symptom codes, each one we know."""
    from subscribers.symptoms import unknown_codes

    codes = frozenset(c.strip() for c in value.split(",") if c.strip())
    bad = unknown_codes(codes)
    if bad:
        fail(f"unknown symptom code: {', '.join(bad)}")
    return codes


def parse_now(value: str | None) -> datetime:
    """``--now``: an ISO 8601 time (UTC when it names no zone); now when not given."""
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--now must be an ISO 8601 time such as 2026-11-23T09:00:00Z (got {value!r})")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_at(value: str) -> datetime:
    """``--at``: a local wall time without a zone (read in each subscriber's own zone)."""
    text = value.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    fail(
        f"--at must be a local date and time like '2026-12-01 09:00' (no zone: it is read in "
        f"each subscriber's own zone); got {value!r}"
    )


def parse_segment(value: str | None) -> tuple[Any, Rule]:
    """``--segment``: a rule in YAML or JSON, or ``@FILE``; everyone when not given. Returns the
    rule as written (stored with the broadcast) and parsed."""
    if value is None:
        return {"all": []}, EVERYONE
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--segment: cannot read {value[1:]}: {getattr(exc, 'strerror', None) or exc}")
    try:
        data = yamltext.safe_load(text)
    except yaml.YAMLError as exc:
        fail(f"--segment is not valid YAML or JSON: {getattr(exc, 'problem', None) or exc}")
    try:
        return data, parse_rule(data)
    except ValidationError as exc:
        # pydantic's error is mapped here, where the rule enters: one line naming the field
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if not str(p)[:1].isupper())
        msg = str(err["msg"]).removeprefix("Value error, ")
        fail(f"--segment: {where + ': ' if where else ''}{msg}")
