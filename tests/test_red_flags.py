"""Red-flag safety routing (see docs/content.md): no drip, one safety email at once, staff alerted."""

from __future__ import annotations

import json
from email import message_from_bytes
from pathlib import Path

from sqlalchemy import select

from scheduler.tables import outbox
from storage import Database
from tests.conftest import CLI, write_csv


def _messages(db_url: str) -> list[tuple[str, str, str]]:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            rows = conn.execute(
                select(outbox.c.recipient, outbox.c.subject, outbox.c.message).order_by(outbox.c.id)
            ).all()
    finally:
        db.dispose()
    out = []
    for to, subject, raw in rows:
        msg = message_from_bytes(bytes(raw))
        text = (
            next(p for p in msg.walk() if p.get_content_type() == "text/plain")
            .get_payload(decode=True)
            .decode()
        )
        out.append((to, subject, text))
    return out


def test_red_flag_gets_safety_email_at_night_and_never_a_drip(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    cli.env("CLINICMAIL_STAFF_EMAIL", "frontdesk@clinic.example")
    write_csv(
        tmp_path / "p.csv",
        [
            "flag@example.com,Fay,lower_back;sciatica;red_flag_saddle_numbness,Europe/London,yes,,",
            "calm@example.com,Cal,lower_back,Europe/London,yes,,",
        ],
    )
    assert cli("subscribers", "import", str(tmp_path / "p.csv"), "--json").json()["imported"] == 2
    # 03:00 in London: outside the send window. Safety and staff mail still go; the drip waits.
    night = cli("tick", "--now", "2026-11-23T03:00:00Z", "--json").json()
    assert night["sent"] == 2
    msgs = _messages(db_url)
    recipients = [m[0] for m in msgs]
    assert sorted(recipients) == ["flag@example.com", "frontdesk@clinic.example"]
    safety = next(m for m in msgs if m[0] == "flag@example.com")
    assert "urgent" in safety[2].lower() or "emergency" in safety[2].lower()
    alert = next(m for m in msgs if m[0] == "frontdesk@clinic.example")
    for private in ("saddle", "red_flag", "sciatica", "flag@example.com", "Fay"):
        assert private not in alert[1]
        assert private not in alert[2]
    assert "/admin/subscribers/" in alert[2]

    # Weeks of ticks later: the calm subscriber gets the series, the red-flag one nothing more.
    for day in ("2026-11-23", "2026-11-30", "2026-12-07", "2026-12-14"):
        cli("tick", "--now", f"{day}T10:00:00Z")
    later = _messages(db_url)
    assert [m[0] for m in later].count("flag@example.com") == 1
    assert [m[0] for m in later].count("calm@example.com") == 4
    # Re-importing the same file does not send a second safety email.
    cli("subscribers", "import", str(tmp_path / "p.csv"))
    cli("tick", "--now", "2026-12-14T11:00:00Z")
    assert [m[0] for m in _messages(db_url)].count("flag@example.com") == 1


def test_tick_json_shape(cli: CLI) -> None:
    data = json.loads(cli("tick", "--now", "2026-11-23T10:00:00Z", "--json").out)
    assert {"sent", "failed"} <= set(data)
