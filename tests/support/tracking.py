"""Helpers for the tracking and check-in tests: a small campaign whose first email has links
and a check-in, the real app on the `cli` fixture's database, and reading what was sent.
(No tests here.)"""

from __future__ import annotations

import re
from email.message import Message
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.context import AppContext
from campaigns.ledger import sends
from engagement.tables import email_events
from tests.support.approval import approve_library
from tests.support.cli import CLI, write_csv

BASE = "https://mail.clinic.example"
MONDAY = "2026-11-23T10:00:00Z"
BOOKING = "https://clinic.example/book"
NHS = "https://www.nhs.uk/conditions/back-pain/?from=clinic&lang=en"
EXERCISES = "https://clinic.example/exercises/neck"

CAMPAIGN_YAML = """id: care-notes
name: Care notes
status: active
cadence_days: 7
"""
STEP_ONE = f"""---
subject: "Your first care note"
preheader: "Links worth keeping."
delay_days: 0
checkin: true
---
Hi {{{{ first_name }}}},

Read the [NHS back pain guide]({NHS}) first, then try [these gentle exercises]({EXERCISES}).

The [NHS guide]({NHS}) again, because it is that good.

[Book an assessment]({{{{ clinic.booking_url }}}}) or [email us](mailto:care@clinic.example).

![A person stretching](https://clinic.example/img/stretch.png)
"""
STEP_TWO = """---
subject: "Your second care note"
delay_days: 7
---
Hi {{ first_name }}, nothing to click this week.
"""


def care_notes(root: Path) -> Path:
    """A one-campaign library: step 1 has three distinct web links, a repeat, a mailto link,
    an image and a check-in; step 2 has none of them."""
    folder = root / "campaigns" / "care-notes"
    folder.mkdir(parents=True)
    (folder / "campaign.yaml").write_text(CAMPAIGN_YAML, encoding="utf-8")
    (folder / "01-first.md").write_text(STEP_ONE, encoding="utf-8")
    (folder / "02-second.md").write_text(STEP_TWO, encoding="utf-8")
    return root / "campaigns"


PEOPLE = [
    "ann@example.com,Annabel,lower_back;sciatica,Europe/London,yes,,",
    "bob@example.com,Bob,neck;desk_posture,Europe/London,yes,,",
]


def set_up(cli: CLI, tmp_path: Path, *, tick: bool = True) -> None:
    """The care-notes library, the two people imported, and (by default) the first tick."""
    cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(care_notes(tmp_path)))
    cli.env("CLINICMAIL_BOOKING_URL", BOOKING)
    cli.env("CLINICMAIL_STAFF_EMAIL", "team@clinic.example")
    approve_library(cli)  # through SendGrid or SMTP only approved content goes out
    csv = write_csv(tmp_path / "people.csv", PEOPLE)
    assert cli("subscribers", "import", str(csv)).code == 0
    if tick:
        run = cli("tick", "--now", MONDAY, "--json")
        assert run.code == 0, run.err
        assert run.json()["sent"] == 2


def part(msg: Message, kind: str) -> str:
    for p in msg.walk():
        if p.get_content_type() == f"text/{kind}":
            payload = p.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(p.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/{kind} part")


def paths(text: str, prefix: str) -> list[str]:
    """Every `{BASE}/{prefix}/…` path in ``text``, in order."""
    return re.findall(rf"{re.escape(BASE)}(/{prefix}/[A-Za-z0-9._/-]+)", text)


def events(ctx: AppContext) -> list[dict[str, Any]]:
    with ctx.db.begin() as conn:
        rows = conn.execute(select(email_events).order_by(email_events.c.id)).mappings().all()
        return [dict(r) for r in rows]


def event_count(ctx: AppContext) -> int:
    with ctx.db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(email_events)).scalar_one())


def send_of(ctx: AppContext, email: str) -> str:
    """The send_id of the campaign email a person got (the header every message carries)."""
    from tests.support.outbox import messages

    (msg,) = [m for m in messages(ctx, email) if "care note" in str(m["Subject"])]
    return str(msg["X-Clinicmail-Send-Id"])


def ledger_rows(ctx: AppContext) -> list[tuple[str, str, str, str]]:
    with ctx.db.begin() as conn:
        return [
            (r.campaign_id, r.step_id, r.kind, r.status)
            for r in conn.execute(
                select(sends.c.campaign_id, sends.c.step_id, sends.c.kind, sends.c.status).order_by(
                    sends.c.id
                )
            )
        ]
