"""The send rate limit (CLINICMAIL_SEND_RATE): a token bucket paces transport calls by recipients.
Checked with an injected clock and sleep (the pauses asked for), never by measuring time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from app.context import AppContext
from app.settings import load_settings
from scheduler.ratelimit import TokenBucket
from scheduler.tick import make_dispatcher, run_tick
from tests.support.approval import approve_library
from tests.support.cli import CLI, assert_one_line_error
from tests.support.delivery import import_people, londoners
from tests.support.sendgrid import FakeSendGrid, use_sendgrid


class FakeClock:
    """Time moves only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@given(
    rate=st.integers(min_value=1, max_value=500),
    emails=st.integers(min_value=0, max_value=5000),
)
def test_sleep_total_for_n_emails_at_rate_r(rate: int, emails: int) -> None:
    t = FakeClock()
    bucket = TokenBucket(rate, clock=t.clock, sleep=t.sleep)
    left = emails
    while left:
        n = min(left, bucket.max_batch)
        bucket.acquire(n)
        left -= n
    # One second's worth goes at once; every further email costs 1/rate seconds.
    assert sum(t.sleeps) == pytest.approx(max(0, emails - rate) / rate)
    assert bucket.slept == pytest.approx(sum(t.sleeps))


def test_idle_time_refills_the_bucket_but_never_beyond_one_second() -> None:
    t = FakeClock()
    bucket = TokenBucket(10, clock=t.clock, sleep=t.sleep)
    assert bucket.acquire(10) == 0
    t.now += 60  # a minute idle earns one second's worth, not sixty
    assert bucket.acquire(10) == 0
    assert bucket.acquire(5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at most 10"):
        bucket.acquire(11)


def test_fractional_rate_sends_one_at_a_time() -> None:
    t = FakeClock()
    bucket = TokenBucket(0.5, clock=t.clock, sleep=t.sleep)
    assert bucket.max_batch == 1
    for _ in range(3):
        bucket.acquire(1)
    # The bucket starts with one email; each next one waits 1/0.5 = 2 s.
    assert t.sleeps == [pytest.approx(2.0), pytest.approx(2.0)]


def test_tick_paces_requests_by_recipients(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> None:
    sendgrid = FakeSendGrid(httpserver)
    use_sendgrid(cli, httpserver, "SG.rate")
    approve_library(cli)  # campaign email goes only once a clinician approved it
    cli.env("CLINICMAIL_SEND_RATE", "4")
    import_people(cli, tmp_path, londoners("r", 10))
    ctx = AppContext.from_settings(load_settings())
    try:
        dispatcher = make_dispatcher(ctx)
        assert dispatcher.pacer is not None and dispatcher.pacer.rate == 4
        t = FakeClock()
        dispatcher.pacer = TokenBucket(4, clock=t.clock, sleep=t.sleep)
        report = run_tick(ctx, datetime(2026, 11, 23, 10, tzinfo=UTC), dispatcher=dispatcher)
    finally:
        ctx.close()
    assert report.delivery.sent == 10
    # No request carries more than one second's worth; the pauses add up to (10 - 4) / 4 s.
    assert [len(b["personalizations"]) for b in sendgrid.requests] == [4, 4, 2]
    assert t.sleeps == [pytest.approx(1.0), pytest.approx(0.5)]


def test_unlimited_by_default_and_through_the_cli(
    cli: CLI, httpserver: HTTPServer, tmp_path: Path
) -> None:
    sendgrid = FakeSendGrid(httpserver)
    use_sendgrid(cli, httpserver, "SG.rate")
    approve_library(cli)  # campaign email goes only once a clinician approved it
    import_people(cli, tmp_path, londoners("r", 6))
    ctx = AppContext.from_settings(load_settings())
    try:
        assert make_dispatcher(ctx).pacer is None
    finally:
        ctx.close()
    cli.env("CLINICMAIL_SEND_RATE", "100")
    assert cli("tick", "--now", "2026-11-23T10:00:00Z", "--json").json()["sent"] == 6
    assert [len(b["personalizations"]) for b in sendgrid.requests] == [6]


@pytest.mark.parametrize("value", ["-1", "fast", "nan", "1e9"])
def test_bad_send_rate_is_one_line_naming_the_variable(sqlite_cli: CLI, value: str) -> None:
    sqlite_cli.env("CLINICMAIL_SEND_RATE", value)
    run = sqlite_cli("tick", "--now", "2026-11-23T10:00:00Z")
    assert_one_line_error(run, "CLINICMAIL_SEND_RATE")
