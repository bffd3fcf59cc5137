"""Quiet days and clinic holidays (CLINICMAIL_QUIET_DAYS, CLINICMAIL_HOLIDAYS), judged in each
subscriber's local time: campaign email waits for the next open window on an allowed day, DST
included; safety, confirmation and staff email do not wait. Driven by `clinicmail tick --now`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.support.approval import approve_library
from tests.support.cli import CLI, assert_one_line_error
from tests.support.delivery import import_people
from tests.support.sendgrid import FakeSendGrid, use_sendgrid


def _tick(cli: CLI, at: str) -> dict[str, Any]:
    run = cli("tick", "--now", at, "--json")
    assert run.code == 0, run.err
    result: dict[str, Any] = run.json()
    return result


@pytest.fixture
def sg(cli: CLI, httpserver: HTTPServer) -> FakeSendGrid:
    use_sendgrid(cli, httpserver, "SG.cal")
    approve_library(cli)  # campaign email goes only once a clinician approved it
    return FakeSendGrid(httpserver)


def test_quiet_weekend_in_each_subscribers_own_time(
    cli: CLI, sg: FakeSendGrid, tmp_path: Path
) -> None:
    cli.env("CLINICMAIL_QUIET_DAYS", "sat,SUN")
    import_people(
        cli,
        tmp_path,
        [
            "lon@example.com,Lou,lower_back,Europe/London,yes,,",
            "tok@example.com,Tomo,lower_back,Asia/Tokyo,yes,,",
        ],
    )
    # Friday 21:30 in London (window closed); already Saturday 06:30 in Tokyo.
    friday = _tick(cli, "2026-11-27T21:30:00Z")
    assert friday["sent"] == 0 and friday["postponed"] == 2
    assert _tick(cli, "2026-11-28T10:00:00Z")["sent"] == 0  # Saturday for both
    assert _tick(cli, "2026-11-29T22:59:00Z")["sent"] == 0  # Monday 07:59 in Tokyo
    # Monday 08:00 in Tokyo is still Sunday in London: only Tokyo gets mail.
    assert _tick(cli, "2026-11-29T23:00:00Z")["sent"] == 1
    assert sg.recipients == ["tok@example.com"]
    assert _tick(cli, "2026-11-30T07:59:00Z")["sent"] == 0
    assert _tick(cli, "2026-11-30T08:00:00Z")["sent"] == 1
    assert sg.recipients == ["tok@example.com", "lon@example.com"]


def test_holidays_postpone_across_a_dst_change(cli: CLI, sg: FakeSendGrid, tmp_path: Path) -> None:
    # Clocks go forward in London on Sunday 28 March 2027; the clinic is closed Sunday and Monday.
    cli.env("CLINICMAIL_HOLIDAYS", "2027-03-28, 2027-03-29")
    import_people(
        cli,
        tmp_path,
        ["hol@example.com,Hal,neck,Europe/London,yes,,"],
        at=datetime(2027, 3, 26, 12, tzinfo=UTC),
    )
    assert _tick(cli, "2027-03-27T20:30:00Z")["sent"] == 0  # Saturday evening: window closed
    assert _tick(cli, "2027-03-28T10:00:00Z")["sent"] == 0  # holiday
    assert _tick(cli, "2027-03-29T10:00:00Z")["sent"] == 0  # holiday
    # Tuesday 08:00 British Summer Time is 07:00 UTC.
    assert _tick(cli, "2027-03-30T06:59:00Z")["sent"] == 0
    assert _tick(cli, "2027-03-30T07:00:00Z")["sent"] == 1


def test_safety_and_staff_email_go_out_on_a_quiet_day(
    cli: CLI, sg: FakeSendGrid, tmp_path: Path
) -> None:
    cli.env("CLINICMAIL_QUIET_DAYS", "sat,sun")
    cli.env("CLINICMAIL_HOLIDAYS", "2026-11-28")
    cli.env("CLINICMAIL_STAFF_EMAIL", "staff@clinic.example")
    saturday_night = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    import_people(
        cli,
        tmp_path,
        ["red@example.com,Rae,lower_back;red_flag_bladder_bowel,Europe/London,yes,,"],
        at=saturday_night,
    )
    result = _tick(cli, "2026-11-28T23:00:00Z")
    assert result["sent"] == 2
    assert sorted(sg.recipients) == ["red@example.com", "staff@clinic.example"]


def test_a_retry_that_falls_on_a_quiet_day_waits_for_monday(
    cli: CLI, sg: FakeSendGrid, tmp_path: Path
) -> None:
    cli.env("CLINICMAIL_QUIET_DAYS", "sat,sun")
    import_people(cli, tmp_path, ["fri@example.com,Fred,lower_back,Europe/London,yes,,"])
    sg.replies.append(Response(status=503, headers={"Retry-After": "120"}))
    assert _tick(cli, "2026-11-27T19:59:30Z")["retried"] == 1  # Friday, just inside the window
    # The retry is due at 20:01:30 on Friday, and then it is the weekend: it is held, not sent.
    held = _tick(cli, "2026-11-28T10:00:00Z")
    assert held["deferred"] == 1 and held["requests"] == 0
    assert _tick(cli, "2026-11-30T07:59:00Z")["requests"] == 0
    monday = _tick(cli, "2026-11-30T08:00:00Z")
    assert monday["sent"] == 1
    assert sg.recipients == ["fri@example.com", "fri@example.com"]  # the 503, then Monday's


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("CLINICMAIL_QUIET_DAYS", "sat,caturday", "is not a day"),
        ("CLINICMAIL_QUIET_DAYS", "mon,tue,wed,thu,fri,sat,sun", "all seven days"),
        ("CLINICMAIL_HOLIDAYS", "2026-12-25,25/12/2026", "is not an ISO date"),
    ],
)
def test_bad_calendar_settings_are_one_line_naming_the_variable(
    sqlite_cli: CLI, name: str, value: str, hint: str
) -> None:
    sqlite_cli.env(name, value)
    run = sqlite_cli("tick", "--now", "2026-11-23T10:00:00Z")
    assert_one_line_error(run, name, hint)
