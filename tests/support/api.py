"""Helpers for the /api/v1 tests: keys made through the real CLI, and the app's answers.
(No tests here.)"""

from __future__ import annotations

from typing import Any

from tests.support.cli import CLI

PROBLEM = "application/problem+json"


def new_key(cli: CLI, name: str, *scopes: str) -> str:
    """A key made by ``clinicmail apikeys create`` (the last line of its output)."""
    run = cli("apikeys", "create", name, "--scope", ",".join(scopes))
    assert run.code == 0, run.err
    return run.out.strip().splitlines()[-1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(answer: Any, status: int) -> dict[str, Any]:
    """The answer is an RFC 9457 problem with ``status``; returns its body."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM), answer.headers
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body
