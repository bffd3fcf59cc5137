"""The spine, end to end: CSV in → tick → rendered email out through the real `sendgrid` client
posting to a fake SendGrid HTTP server on loopback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug import Response

from tests.support.cli import CLI, write_csv
from tests.support.sendgrid import FakeSendGrid

MONDAY_10_LONDON = "2026-11-23T10:00:00Z"


def _people(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "people.csv",
        [
            "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,2026-11-01T09:00:00Z,clinic",
            "BOB@example.com,,neck;desk_posture,Europe/London,true,,",
            "cat@example.com,Cat,lower_back;acute_spasm,,1,,",
        ],
    )


def test_first_email_reaches_each_subscriber_exactly_once(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path
) -> None:
    assert sg_cli("subscribers", "import", str(_people(tmp_path)), "--json").json() == {
        "imported": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }
    first = sg_cli("tick", "--now", MONDAY_10_LONDON, "--json")
    assert first.code == 0, first.err
    assert first.json()["sent"] == 3 and first.json()["failed"] == 0
    assert sorted(r.lower() for r in sendgrid.recipients) == [
        "ann@example.com",
        "bob@example.com",
        "cat@example.com",
    ]

    again = sg_cli("tick", "--now", MONDAY_10_LONDON, "--json")
    assert again.json()["sent"] == 0
    later_same_day = sg_cli("tick", "--now", "2026-11-23T15:00:00Z", "--json")
    assert later_same_day.json()["sent"] == 0
    assert len(sendgrid.recipients) == 3

    for body, headers in zip(sendgrid.requests, sendgrid.headers, strict=True):
        assert headers["Authorization"] == "Bearer SG.test-key"
        types = [c["type"] for c in body["content"]]
        assert types == ["text/plain", "text/html"]
        assert body["categories"] == ["spasm-education"]
        assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "spasm-education" in body["headers"]["List-Id"]
        assert body["tracking_settings"]["click_tracking"]["enable"] is False
        for p in body["personalizations"]:
            unsub = p["headers"]["List-Unsubscribe"]
            assert re.fullmatch(
                r"<https://mail\.clinic\.example/unsubscribe/[A-Za-z0-9._-]+>", unsub
            )
            assert re.fullmatch(r"[0-9a-f]{32}", p["custom_args"]["send_id"])
            email = p["to"][0]["email"]
            assert email.split("@")[0] not in unsub
            # What SendGrid keeps for ever must be opaque: no address, name or symptom code.
            for value in [
                *body["categories"],
                *p["custom_args"].values(),
                *body["custom_args"].values(),
            ]:
                for personal in (
                    "example.com",
                    "ann@",
                    "bob@",
                    "cat@",
                    "sciatica",
                    "neck",
                    "lower_back",
                ):
                    assert personal not in value.lower()
    send_ids = [
        p["custom_args"]["send_id"] for b in sendgrid.requests for p in b["personalizations"]
    ]
    assert len(set(send_ids)) == 3


def test_content_branches_by_symptoms_and_greets_by_name(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path
) -> None:
    sg_cli("subscribers", "import", str(_people(tmp_path)))
    sg_cli("tick", "--now", MONDAY_10_LONDON)
    by_person: dict[str, tuple[str, str, dict[str, str]]] = {}
    for body in sendgrid.requests:
        html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
        for p in body["personalizations"]:
            by_person[p["to"][0]["email"]] = (body["subject"], html, p["substitutions"])
    subjects = {k: v[0] for k, v in by_person.items()}
    assert len(set(subjects.values())) == 3, subjects  # sciatica, neck and general paths differ
    # per-recipient values travel as substitutions, HTML-escaped for the HTML part
    _, html, subs = by_person["ann@example.com"]
    assert "@@first_name@@" in html
    assert subs["@@first_name@@"] == "Ann"
    assert by_person["BOB@example.com"][2]["@@first_name@@"] == "there"  # graceful fallback
    assert "1 Example Street" in html or "Example Street" in html  # postal address in the footer


def test_nothing_before_the_send_window(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path
) -> None:
    write_csv(tmp_path / "ny.csv", ["ny@example.com,Nia,lower_back,America/New_York,yes,,"])
    sg_cli("subscribers", "import", str(tmp_path / "ny.csv"))
    # 10:00 in London is 05:00 in New York: outside her window.
    assert sg_cli("tick", "--now", MONDAY_10_LONDON, "--json").json()["sent"] == 0
    # 13:00Z is 08:00 in New York: the first tick inside her window sends.
    assert sg_cli("tick", "--now", "2026-11-23T13:00:00Z", "--json").json()["sent"] == 1


def test_at_most_one_campaign_email_in_seven_days(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path
) -> None:
    write_csv(tmp_path / "one.csv", ["one@example.com,Oli,lower_back,Europe/London,yes,,"])
    sg_cli("subscribers", "import", str(tmp_path / "one.csv"))
    assert sg_cli("tick", "--now", "2026-11-23T10:00:00Z", "--json").json()["sent"] == 1
    assert sg_cli("tick", "--now", "2026-11-27T10:00:00Z", "--json").json()["sent"] == 0
    assert sg_cli("tick", "--now", "2026-11-30T09:59:00Z", "--json").json()["sent"] == 0
    assert sg_cli("tick", "--now", "2026-11-30T10:00:00Z", "--json").json()["sent"] == 1
    subjects = [b["subject"] for b in sendgrid.requests]
    assert len(subjects) == 2 and subjects[0] != subjects[1]


def test_dry_run_changes_and_sends_nothing(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path
) -> None:
    sg_cli("subscribers", "import", str(_people(tmp_path)))
    dry = sg_cli("tick", "--now", MONDAY_10_LONDON, "--dry-run", "--json").json()
    assert dry["sent"] == 0 and dry["would_send"] == 3 and dry["dry_run"] is True
    assert sendgrid.requests == []
    assert sg_cli("tick", "--now", MONDAY_10_LONDON, "--json").json()["sent"] == 3


def test_batches_share_one_request(sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path) -> None:
    rows = [f"p{i}@example.com,P{i},lower_back,Europe/London,yes,,bulk" for i in range(40)]
    write_csv(tmp_path / "bulk.csv", rows)
    sg_cli("subscribers", "import", str(tmp_path / "bulk.csv"))
    assert sg_cli("tick", "--now", MONDAY_10_LONDON, "--json").json()["sent"] == 40
    assert len(sendgrid.requests) == 1
    assert len(sendgrid.requests[0]["personalizations"]) == 40


@pytest.mark.parametrize(
    ("reply", "status", "sent"),
    [
        (Response(status=500), "retried", 0),
        (Response(status=429, headers={"Retry-After": "120"}), "retried", 0),
        # SendGrid calls this recipient's address invalid: that send fails for good.
        (
            Response(
                '{"errors":[{"message":"Does not contain a valid address.",'
                '"field":"personalizations.0.to.0.email"}]}',
                status=400,
            ),
            "failed",
            0,
        ),
        # SendGrid refuses the message itself: the email is set aside, the send waits unfailed
        # (scheduler.setaside; tests/test_delivery_outcomes.py follows it to the end).
        (
            Response('{"errors":[{"message":"bad","field":"subject"}]}', status=400),
            "waiting",
            0,
        ),
    ],
)
def test_provider_errors_are_typed(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path, reply: Response, status: str, sent: int
) -> None:
    write_csv(tmp_path / "one.csv", ["one@example.com,Oli,lower_back,Europe/London,yes,,"])
    sg_cli("subscribers", "import", str(tmp_path / "one.csv"))
    sendgrid.replies.append(reply)
    result = sg_cli("tick", "--now", MONDAY_10_LONDON, "--json").json()
    assert result[status] == 1 and result["sent"] == sent
    # a retried send goes out on a later tick, once; a failed one never does
    later = sg_cli("tick", "--now", "2026-11-23T12:30:00Z", "--json").json()
    assert later["sent"] == (1 if status == "retried" else 0)
    assert sendgrid.recipients.count("one@example.com") == (2 if status == "retried" else 1)


def test_retry_after_is_honoured(sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path) -> None:
    write_csv(tmp_path / "one.csv", ["one@example.com,Oli,lower_back,Europe/London,yes,,"])
    sg_cli("subscribers", "import", str(tmp_path / "one.csv"))
    sendgrid.replies.append(Response(status=429, headers={"Retry-After": "600"}))
    sg_cli("tick", "--now", "2026-11-23T10:00:00Z")
    assert sg_cli("tick", "--now", "2026-11-23T10:05:00Z", "--json").json()["sent"] == 0
    assert sg_cli("tick", "--now", "2026-11-23T10:10:01Z", "--json").json()["sent"] == 1
