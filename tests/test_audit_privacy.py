"""The audit log after an erasure holds nothing readable about the person, the export includes
the person's audit entries, and views, exports and erasures from the command line and the
people search are audited like the console's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from staff.tables import audit_log
from storage import utcnow
from subscribers.pages import PAUSE_WEEKS
from subscribers.tables import subscribers
from tests.support.cli import write_csv
from tests.support.console import Console

PERSON = "ada.person@example.com"


def _audit_rows(console: Console) -> list[dict[str, object]]:
    with console.ctx.db.begin() as conn:
        return [dict(r._mapping) for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]


def test_erasure_leaves_no_health_data_in_the_audit_log(console: Console, tmp_path: Path) -> None:
    cli = console.cli
    write_csv(tmp_path / "p.csv", [f"{PERSON},Ada,lower_back;sciatica,Europe/London,yes,,"])
    assert cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    with console.ctx.db.begin() as conn:
        public_id = conn.execute(
            select(subscribers.c.public_id).where(subscribers.c.email_key == PERSON)
        ).scalar_one()
    staff, csrf = console.signed_in("ops")
    base = f"/admin/subscribers/{public_id}"
    assert staff.get(base).status_code == 200
    changed = staff.post(
        f"{base}/symptoms",
        data={"csrf_token": csrf, "symptoms": ["neck", "desk_posture", "disc_problem"]},
    )
    assert changed.status_code == 303
    paused = staff.post(f"{base}/pause", data={"csrf_token": csrf, "weeks": str(PAUSE_WEEKS[0])})
    assert paused.status_code == 303
    searched = staff.post(
        "/admin/subscribers", data={"csrf_token": csrf, "q": "ada.person"}, follow_redirects=True
    )
    assert searched.status_code == 200 and PERSON in searched.text

    exported = cli("subscribers", "export", PERSON)
    assert exported.code == 0
    held = json.loads(exported.out)["audit_log"]
    actions = [e["action"] for e in held]
    for action in ("subscriber.view", "subscriber.symptoms", "subscriber.pause"):
        assert action in actions, actions
    assert {"added": 3, "removed": 2} in [e["detail"] for e in held]

    assert cli("subscribers", "erase", PERSON).code == 0
    rows = _audit_rows(console)
    by_action = {str(r["action"]): r for r in rows}
    for action in ("subscriber.export", "subscriber.erase"):
        assert by_action[action]["actor"] == "cli" and by_action[action]["target_id"] == public_id
    assert by_action["subscriber.search"]["target_id"] == "search"
    dumped = json.dumps([{k: str(v) for k, v in r.items()} for r in rows])
    for secret in ("ada.person", "Ada", "sciatica", "lower_back", "neck", "disc_problem", "until"):
        assert secret not in dumped, secret
    pause_detail = by_action["subscriber.pause"]["detail"]
    assert pause_detail == {"weeks": PAUSE_WEEKS[0]}


def test_the_migration_scrubs_older_entries(console: Console) -> None:
    """Entries written before revision 1000 lose their symptom codes and pause dates."""
    db = console.ctx.db
    with db.begin() as conn:
        for action, detail in (
            ("subscriber.symptoms", {"before": ["neck"], "after": ["neck", "sciatica"]}),
            ("subscriber.pause", {"weeks": 4, "until": "2026-12-24T09:00:00+00:00"}),
        ):
            conn.execute(
                audit_log.insert().values(
                    at=utcnow(),
                    actor="ops@clinic.example",
                    action=action,
                    target_type="subscriber",
                    target_id="0" * 32,
                    detail=detail,
                )
            )
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '1000'"))
    db.migrate()
    details = {str(r["action"]): r["detail"] for r in _audit_rows(console)}
    assert details["subscriber.symptoms"] == {"added": 1, "removed": 0}
    assert details["subscriber.pause"] == {"weeks": 4}
    with db.begin() as conn, pytest.raises(DBAPIError, match="append-only"):  # still so
        conn.execute(text("UPDATE audit_log SET actor = 'x'"))
