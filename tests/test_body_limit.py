"""The body limit in the app itself: counted as the body streams in, answered plainly."""

from __future__ import annotations

from collections.abc import Iterator

from app.bodylimit import BodyLimit
from app.http import BODY_LIMIT, BODY_LIMITS
from tests.support.app import app_for
from tests.support.backends import sqlite_only
from tests.support.cli import CLI


def _chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


@sqlite_only("the body is refused before the app reads it")
def test_chunked_bodies_over_the_limit_are_413(cli: CLI) -> None:
    with app_for(cli) as (client, _ctx):
        api = client.post(
            "/api/subscribers",
            content=_chunks(BODY_LIMIT * 4),
            headers={"Content-Type": "application/json"},
        )
        assert api.status_code == 413 and "too large" in api.json()["detail"]
        form = client.post(
            "/signup",
            content=_chunks(BODY_LIMIT * 4),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 413 and form.headers["content-type"].startswith("text/html")
        assert "too large" in form.text
        # just under the limit is read and judged on its content as usual
        fine = client.post(
            "/api/subscribers",
            content=b" " * (BODY_LIMIT - 100) + b'{"email": "a@example.com", "consent": true}',
            headers={"Content-Type": "application/json"},
        )
        assert fine.status_code == 202


def test_the_longest_prefix_wins() -> None:
    limit = BodyLimit(lambda *_a: None, default=BODY_LIMIT, limits=BODY_LIMITS)  # type: ignore[arg-type]
    assert limit.limit_for("/api/subscribers") == BODY_LIMIT
    assert limit.limit_for("/webhooks/sendgrid") > BODY_LIMIT
    assert limit.limit_for("/admin/content/1") > BODY_LIMIT
