"""Branching by engagement: `clicked:` / `opened:` / `checkin:` rules swap a step's variant.
Previewed with `campaigns journey --clicked/--checkin`; end to end, a human click that comes
back through the signed webhook makes the next tick send the engagement variant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.app import web
from tests.support.approval import approve_library
from tests.support.cli import CLI, write_csv
from tests.support.sendgrid import FakeSendGrid
from tests.support.signer import Signer, body_of, event


def _journey(cli: CLI, *args: str) -> dict[str, str]:
    run = cli(
        "campaigns", "journey", "spasm-education", "--symptoms", "lower_back", *args, "--json"
    )
    assert run.code == 0, run.err
    return {e["step"]: e["variant"] for e in run.json()["emails"]}


def test_journey_previews_engagement_branches(sqlite_cli: CLI) -> None:
    plain = _journey(sqlite_cli)
    # Low-back readers have emails of their own on some weeks; the rest are the default text.
    assert set(plain.values()) == {"default", "low-back"}
    worse = _journey(sqlite_cli, "--checkin", "worse")
    assert worse["build-strength-step-by-step"] == "checkin-worse"
    assert {k: v for k, v in worse.items() if k != "build-strength-step-by-step"} == {
        k: v for k, v in plain.items() if k != "build-strength-step-by-step"
    }
    assert _journey(sqlite_cli, "--checkin", "better") == plain
    keen = _journey(sqlite_cli, "--clicked", "build-strength-step-by-step")
    assert keen["looking-ahead"] == "strength"
    # A click on an email counts only once it has been received: clicking the last email
    # changes nothing before it, and a click on step 9 nothing before step 9.
    assert _journey(sqlite_cli, "--clicked", "looking-ahead") == plain
    text = sqlite_cli(
        "campaigns", "journey", "spasm-education", "--symptoms", "neck", "--checkin", "worse"
    )
    assert "Sorry this week has been harder" in text.out


def test_journey_engagement_options_refuse_unknown_steps(sqlite_cli: CLI) -> None:
    for args, words in (
        (("--clicked", "no-such-step"), "no step 'no-such-step' in spasm-education; steps:"),
        (("--opened", "other/x"), "no campaign 'other'"),
    ):
        run = sqlite_cli("campaigns", "journey", "spasm-education", "--symptoms", "neck", *args)
        assert run.code == 1 and words in run.err, run.err
        assert len(run.err.strip().splitlines()) == 1
    bad = sqlite_cli(
        "campaigns", "journey", "spasm-education", "--symptoms", "neck", "--checkin", "fine"
    )
    assert bad.code != 0 and "Traceback" not in bad.err


DEMO = {
    "campaign.yaml": "id: demo\nname: Demo series\nstatus: active\n",
    "01-hello.md": (
        '---\nsubject: "Hello"\ncta: book\n---\nHi {{ first_name }},\n\n'
        "[Try the exercise]({{ clinic.booking_url }})\n"
    ),
    "02-next.md": (
        '---\nsubject: "Week two"\nvariants:\n  - id: keen\n'
        "    when: {clicked: demo/hello}\n    file: 02-next.keen.md\n---\n"
        "Hi {{ first_name }}, here is week two.\n"
    ),
    "02-next.keen.md": (
        '---\nsubject: "Week two: building on the exercise"\n---\n'
        "Hi {{ first_name }}, you tried the exercise. Here is the next one.\n"
    ),
}


def test_a_human_click_sends_the_engagement_variant_next(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path
) -> None:
    lib = tmp_path / "lib" / "demo"
    lib.mkdir(parents=True)
    for name, text in DEMO.items():
        (lib / name).write_text(text, encoding="utf-8")
    sg_cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(lib.parent))
    approve_library(sg_cli)  # the new campaign too: only approved content goes through SendGrid
    signer = Signer()
    sg_cli.env("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    csv = write_csv(
        tmp_path / "people.csv",
        [
            "ann@example.com,Ann,lower_back,Europe/London,yes,,",
            "bob@example.com,Bob,lower_back,Europe/London,yes,,",
        ],
    )
    assert sg_cli("subscribers", "import", str(csv)).code == 0
    day = (datetime.now(UTC) + timedelta(days=3)).replace(hour=12, minute=0, second=0)
    week_one = day.isoformat()
    assert sg_cli("tick", "--now", week_one, "--json").json()["sent"] == 2
    ids = {
        p["to"][0]["email"]: p["custom_args"]["send_id"]
        for body in sendgrid.requests
        for p in body["personalizations"]
    }

    def ev(kind: str, email: str, n: int, **extra: Any) -> dict[str, Any]:
        return event(kind, email, n, send_id=ids[email], **extra)

    # Ann clicks the link; Bob only opens.
    batch = [
        ev("open", "ann@example.com", 1),
        ev("click", "ann@example.com", 2, url="https://clinic.example/book"),
        ev("open", "bob@example.com", 3),
    ]
    body = body_of(batch)
    with web(sg_cli) as client:
        reply = signer.post(client, body)
        assert reply.status_code == 200
    sent_before = len(sendgrid.requests)
    week_two = (day + timedelta(days=7, minutes=1)).isoformat()
    assert sg_cli("tick", "--now", week_two, "--json").json()["sent"] == 2
    subjects = {
        p["to"][0]["email"]: body.get("subject") or p.get("subject")
        for body in sendgrid.requests[sent_before:]
        for p in body["personalizations"]
    }
    assert subjects == {
        "ann@example.com": "Week two: building on the exercise",
        "bob@example.com": "Week two",
    }
