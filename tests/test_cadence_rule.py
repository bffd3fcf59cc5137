"""The cadence rule as a pure function (campaigns/cadence.py), without a database or the CLI:
properties that hold for every moment, zone, window and set of closed days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from campaigns.cadence import WEEKLY_CAP, Cadence, Closures, parse_quiet_days, parse_window

ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
WINDOWS = ["08:00-20:00", "00:00-24:00", "09:30-10:00", "01:30-02:30"]

moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
closures = st.builds(
    Closures,
    quiet_days=st.frozensets(st.integers(0, 6), max_size=5),
    holidays=st.frozensets(st.dates(date(2026, 1, 1), date(2029, 1, 31)), max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(
    now=moments,
    zone=st.sampled_from(ZONES),
    window=st.sampled_from(WINDOWS),
    closed=closures,
    last=st.none() | st.timedeltas(timedelta(0), timedelta(days=10)),
)
# Found by this test: London's clocks jump from 01:00 to 02:00 on 29 March 2026, over the
# window's opening; the window is open from the jump (02:00 local) to 02:30.
@example(
    now=datetime(2026, 3, 28, 3, tzinfo=UTC),
    zone="Europe/London",
    window="01:30-02:30",
    closed=Closures(),
    last=None,
)
def test_the_earliest_slot_is_open_and_keeps_the_weekly_cap(
    now: datetime, zone: str, window: str, closed: Closures, last: timedelta | None
) -> None:
    rule = Cadence(ZoneInfo("Europe/London"), window, closed)
    last_accepted = None if last is None else now - last
    slot = rule.earliest(now, None, zone=zone, last_accepted=last_accepted)
    assert slot.at >= now
    assert rule.is_open(slot.at, zone)
    if last_accepted is not None and last_accepted + WEEKLY_CAP > now:
        assert slot.reason == "weekly_cap"
        assert slot.at >= last_accepted + WEEKLY_CAP
    if slot.reason is None:
        assert slot.at == now


@settings(max_examples=200, deadline=None)
@given(now=moments, zone=st.sampled_from(ZONES), window=st.sampled_from(WINDOWS), closed=closures)
def test_next_open_is_the_first_open_moment(
    now: datetime, zone: str, window: str, closed: Closures
) -> None:
    rule = Cadence(ZoneInfo("UTC"), window, closed)
    opening = rule.next_open(now, zone)
    assert opening >= now
    assert rule.is_open(opening, zone)
    local = opening.astimezone(ZoneInfo(zone))
    assert not closed.closed(local.date())
    if opening > now:
        assert not rule.is_open(now, zone)


def test_an_email_in_flight_holds_the_next_for_a_week_after_it() -> None:
    rule = Cadence(ZoneInfo("Europe/London"), "00:00-24:00")
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    due = now + timedelta(hours=3)
    slot = rule.earliest(now, None, zone=None, last_accepted=None, in_flight_from=due)
    assert (slot.at, slot.reason) == (due + WEEKLY_CAP, "in_flight")


def test_the_window_is_judged_in_the_persons_zone_across_a_clock_change() -> None:
    rule = Cadence(ZoneInfo("Europe/London"), "08:00-20:00")
    # London goes to summer time on Sunday 29 March 2026: 08:00 local is 07:00 UTC from then.
    saturday_night = datetime(2026, 3, 28, 21, 0, tzinfo=UTC)
    assert rule.next_open(saturday_night, "Europe/London") == datetime(2026, 3, 29, 7, tzinfo=UTC)
    # Someone in New York is still inside their window at that moment (17:00 local).
    assert rule.is_open(saturday_night, "America/New_York")
    # An unknown zone falls back to the clinic's.
    assert rule.zone("Mars/Olympus") == ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("window", "opens"),
    [
        # Opening inside the hour the clocks skip: open from the jump (02:00 BST) until 02:30.
        ("01:30-02:30", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        # Wholly inside the skipped hour: no window that Sunday, so Monday at 01:15 BST.
        ("01:15-01:45", datetime(2026, 3, 30, 0, 15, tzinfo=UTC)),
        # On an ordinary reading the jump changes nothing but the offset.
        ("03:00-04:00", datetime(2026, 3, 29, 2, 0, tzinfo=UTC)),
    ],
)
def test_a_window_the_clocks_jump_over_opens_at_the_jump(window: str, opens: datetime) -> None:
    rule = Cadence(ZoneInfo("Europe/London"), window)
    saturday = datetime(2026, 3, 28, 5, 0, tzinfo=UTC)
    assert rule.next_open(saturday, None) == opens
    assert rule.is_open(opens, None)
    assert not rule.is_open(opens - timedelta(seconds=1), None)


def test_a_window_in_the_repeated_hour_opens_at_its_first_reading() -> None:
    # London's clocks go back from 02:00 BST to 01:00 GMT on 25 October 2026: 01:30 happens twice.
    rule = Cadence(ZoneInfo("Europe/London"), "01:30-01:45")
    saturday = datetime(2026, 10, 24, 3, 0, tzinfo=UTC)
    assert rule.next_open(saturday, None) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_closed_days_and_holidays_are_skipped_in_local_dates() -> None:
    closed = Closures(
        quiet_days=parse_quiet_days("sat,sun"), holidays=frozenset({date(2026, 12, 25)})
    )
    rule = Cadence(ZoneInfo("Europe/London"), "08:00-20:00", closed)
    thursday_evening = datetime(2026, 12, 24, 20, 30, tzinfo=UTC)
    # Friday is a holiday, the weekend is quiet: Monday 28 December, 08:00 London.
    assert rule.next_open(thursday_evening, None) == datetime(2026, 12, 28, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("08:00-20:00", (time(8), time(20))), ("00:00-24:00", (time(0), time(23, 59, 59)))],
)
def test_windows_parse(text: str, expected: tuple[time, time]) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["20:00-08:00", "8-20", "", "08:00-08:00"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="08:00-20:00"):
        parse_window(text)


def test_seven_quiet_days_are_refused() -> None:
    with pytest.raises(ValueError, match="seven"):
        parse_quiet_days("mon,tue,wed,thu,fri,sat,sun")
