"""The cadence rule (campaigns/cadence.py), end to end: at most one campaign email in any seven
days *measured from the moment the provider accepted each email*, broadcasts included, with
time-sensitive broadcasts as the one exception.

The provider is a fake SendGrid on loopback reached through the real ``sendgrid`` client; it
answers 500 and 429 when told to, and notes the virtual time of every request it accepts, so
the seven days are checked against what the provider saw, not against the ledger."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from campaigns.ledger import CAMPAIGN, SENT, sends
from storage import Database
from subscribers.tables import subscribers
from tests.support.approval import REVIEWER, approve_library, broadcast_approved
from tests.support.cli import CLI, write_csv
from tests.support.sendgrid import FakeSendGrid, use_sendgrid
from tests.support.times import iso

WEEK = timedelta(days=7)
START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # a Monday, before the London window opens

NEWS = """---
subject: "Our opening hours over the holidays"
preheader: "When we are open."
---
Hi {{ first_name }},

We are open over the holidays. [Book a visit]({{ clinic.booking_url }}).
"""


class ClockedSendGrid(FakeSendGrid):
    """Notes the virtual time of each accepted recipient (the test sets ``now`` per tick)."""

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.now = START
        self.accepted: dict[str, list[datetime]] = defaultdict(list)
        self.refused = 0

    def handle(self, request: Request) -> Response:
        if self.replies:
            self.refused += 1
            self.requests.append({})
            return self.replies.pop(0)
        response = super().handle(request)
        for p in self.requests[-1]["personalizations"]:
            self.accepted[p["to"][0]["email"].lower()].append(self.now)
        return response


@pytest.fixture
def provider(httpserver: HTTPServer) -> ClockedSendGrid:
    return ClockedSendGrid(httpserver)


@pytest.fixture
def sg(cli: CLI, httpserver: HTTPServer) -> CLI:
    use_sendgrid(cli, httpserver)
    approve_library(cli)  # campaign email goes only once a clinician approved it
    return cli


def _tick(cli: CLI, provider: ClockedSendGrid, at: datetime) -> dict[str, object]:
    provider.now = at
    run = cli("tick", "--now", iso(at), "--json")
    assert run.code == 0, run.err
    return dict(run.json())


def _ledger_acceptance(db_url: str) -> dict[str, list[datetime]]:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            out: dict[str, list[datetime]] = defaultdict(list)
            for email, at in conn.execute(
                select(subscribers.c.email_key, sends.c.sent_at)
                .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
                .where(sends.c.kind == CAMPAIGN, sends.c.status == SENT)
                .order_by(sends.c.sent_at)
            ):
                out[email].append(at)
            return out
    finally:
        db.dispose()


def _gaps(times: list[datetime]) -> list[timedelta]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


def test_seven_weeks_of_500s_and_429s_never_bring_two_emails_closer_than_seven_days(
    sg: CLI, provider: ClockedSendGrid, tmp_path: Path, db_url: str
) -> None:
    people = [f"p{i}@example.com" for i in range(4)]
    csv = write_csv(
        tmp_path / "people.csv", [f"{e},P,lower_back,Europe/London,yes,," for e in people]
    )
    assert sg("subscribers", "import", str(csv)).code == 0
    # A (not time-sensitive) newsletter mid-series: it waits for the cap and counts toward it.
    (tmp_path / "news.md").write_text(NEWS, encoding="utf-8")
    scheduled = broadcast_approved(sg, str(tmp_path / "news.md"), "--at", "2026-12-09 10:00")
    assert scheduled.code == 0, scheduled.err
    assert "scheduled 'news'" in scheduled.out, scheduled.out

    # Failures, injected when each week's email is due: a 500 (sent again a tick later), a 429
    # asking for more than a day, and an outage of several ticks.
    failures = {
        START + timedelta(days=7): [Response(status=500)],
        START + timedelta(days=21): [Response(status=429, headers={"Retry-After": str(26 * 3600)})],
        START + timedelta(days=35): [Response(status=500)] * 4,
    }
    # Three ticks a day (07:00, 13:00, 19:00 UTC) for seven weeks: before, inside and near the
    # end of the London send window.
    for day in range(49):
        for hour in (0, 6, 12):
            at = START + timedelta(days=day, hours=hour)
            provider.replies.extend(failures.get(at, []))
            _tick(sg, provider, at)

    assert provider.replies == [] and provider.refused == 6  # every failure was met
    # Staff alerts (the transport recovered) go to the staff address, by default the sender's;
    # the review workflow's notices to the clinician who approved the library.
    staff = {"care@clinic.example", REVIEWER}
    accepted = {e: at for e, at in provider.accepted.items() if e not in staff}
    assert set(accepted) == set(people)
    for email in people:
        gaps = _gaps(accepted[email])
        assert len(accepted[email]) >= 5, accepted[email]
        assert min(gaps) >= WEEK, (email, [str(g) for g in gaps])
        # The delays really moved the series: some gaps are longer than a week.
        assert max(gaps) > WEEK + timedelta(hours=20), [str(g) for g in gaps]
    # The ledger's acceptance times are the provider's.
    assert {k: sorted(v) for k, v in _ledger_acceptance(db_url).items()} == {
        k: sorted(v) for k, v in accepted.items()
    }
    # The newsletter went to everyone, inside the rule like any other campaign email.
    news = [
        b for b in provider.requests if b.get("subject") == "Our opening hours over the holidays"
    ]
    assert sum(len(b["personalizations"]) for b in news) == len(people)


def test_a_time_sensitive_broadcast_goes_at_its_time_and_the_series_waits_seven_days_from_it(
    sg: CLI, provider: ClockedSendGrid, tmp_path: Path
) -> None:
    csv = write_csv(
        tmp_path / "people.csv",
        ["urgent@example.com,Uma,lower_back,Europe/London,yes,,"],
    )
    assert sg("subscribers", "import", str(csv)).code == 0
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert _tick(sg, provider, monday)["sent"] == 1  # the series' first email

    (tmp_path / "closed.md").write_text(NEWS, encoding="utf-8")
    args = ("campaigns", "broadcast", str(tmp_path / "closed.md"), "--at", "2026-11-25 10:00")
    dry = sg(*args, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert dry.json()["waiting_for_frequency_cap"] == 1  # without the flag it would wait
    assert dry.json()["waits"][0]["reason"] == "weekly_cap"
    assert dry.json()["waits"][0]["until"] == "2026-11-30T10:00:00Z"
    dry_urgent = sg(*args, "--time-sensitive", "--dry-run", "--json")
    assert dry_urgent.json()["waiting_for_frequency_cap"] == 0
    assert dry_urgent.json()["waits"] == []
    assert dry_urgent.json()["time_sensitive"] is True
    human = sg(*args, "--time-sensitive", "--dry-run")
    assert "time-sensitive" in human.out

    assert broadcast_approved(sg, *args[2:], "--time-sensitive").code == 0
    wednesday = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert _tick(sg, provider, wednesday)["sent"] == 1  # two days after the series email
    # The series email due on Monday waits seven days from the broadcast's acceptance.
    assert _tick(sg, provider, monday + WEEK)["sent"] == 0
    assert _tick(sg, provider, wednesday + WEEK - timedelta(minutes=1))["sent"] == 0
    assert _tick(sg, provider, wednesday + WEEK)["sent"] == 1
    assert provider.accepted["urgent@example.com"] == [monday, wednesday, wednesday + WEEK]
    # The body is encoded once (orjson) and declared as UTF-8 JSON through the SDK's own seam.
    assert provider.headers[-1]["Content-Type"] == "application/json; charset=utf-8"
    # Scheduling it again without the flag is a different broadcast: refused, nothing changes.
    again = sg(*args)
    assert again.code == 1 and "different content" in again.err


def test_an_email_in_flight_holds_the_next_until_it_is_accepted(
    sg: CLI, provider: ClockedSendGrid, tmp_path: Path
) -> None:
    """A send retrying for longer than a week (a long outage) holds the next step: the person
    gets it seven days after the delayed one is finally accepted, never two together."""
    csv = write_csv(tmp_path / "one.csv", ["slow@example.com,Sam,lower_back,Europe/London,yes,,"])
    assert sg("subscribers", "import", str(csv)).code == 0
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    provider.replies.append(Response(status=429, headers={"Retry-After": str(9 * 24 * 3600)}))
    assert _tick(sg, provider, monday)["retried"] == 1
    # Nine days later: the retry goes; the second step (due on day 7) has waited for it.
    assert _tick(sg, provider, monday + WEEK)["sent"] == 0
    late = monday + timedelta(days=9)
    assert _tick(sg, provider, late)["sent"] == 1
    assert _tick(sg, provider, late + timedelta(hours=3))["sent"] == 0
    assert _tick(sg, provider, late + WEEK - timedelta(hours=1))["sent"] == 0
    assert _tick(sg, provider, late + WEEK)["sent"] == 1
    assert provider.accepted["slow@example.com"] == [late, late + WEEK]
