"""Human opens and clicks that flow back through the webhook become facts segment rules can test
(``clicked:`` / ``opened:`` / ``checkin:``); machine opens never do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from storage import Database
from subscribers import activity, store
from subscribers.segments import compile_rule, parse_rule
from subscribers.tables import subscribers
from tests.support.app import web
from tests.support.cli import CLI
from tests.support.rows import insert_subscriber
from tests.support.sendgrid import NEXT_MONDAY, FakeSendGrid, send_first_week
from tests.support.signer import Signer, body_of, event

NOW = "2026-11-24T09:00:00+00:00"


def _segment(db_url: str, rule: Any) -> set[str]:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            compiled = compile_rule(parse_rule(rule))
            in_sql = set(conn.execute(select(subscribers.c.email).where(compiled)).scalars())
            everyone = list(conn.execute(select(subscribers.c.id)).scalars())
            people = store.profiles(conn, everyone)
            now = datetime.fromisoformat(NOW)
            in_python = {p.email for p in people.values() if parse_rule(rule).matches(p.facts(now))}
        assert in_sql == in_python
        return in_sql
    finally:
        db.dispose()


def test_webhook_engagement_becomes_rule_facts(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path, db_url: str
) -> None:
    signer = Signer()
    sg_cli.env("CLINICMAIL_SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    ids = send_first_week(sg_cli, sendgrid, tmp_path)

    def ev(kind: str, email: str, n: int, **extra: Any) -> dict[str, Any]:
        return event(kind, email, n, send_id=ids[email], **extra)

    batch = [
        ev("click", "ann@example.com", 1, url="https://clinic.example/book"),
        ev("open", "ann@example.com", 2),
        ev("open", "bob@example.com", 3),
        ev("open", "cat@example.com", 4, sg_machine_open=True),  # privacy prefetch: not human
    ]
    body = body_of(batch)
    with web(sg_cli) as client:
        assert signer.post(client, body).status_code == 200
    # a tick applies anything the web process had not applied yet
    assert sg_cli("tick", "--now", NEXT_MONDAY, "--json").code == 0

    ann, bob = "ann@example.com", "bob@example.com"
    assert _segment(db_url, {"clicked": "spasm-education/why-your-back-locks-up"}) == {ann}
    assert _segment(db_url, {"clicked": "spasm-education"}) == {ann}
    assert _segment(db_url, {"clicked": "spasm-education/the-first-few-days"}) == set()
    assert _segment(db_url, {"opened": "spasm-education/why-your-back-locks-up"}) == {ann, bob}
    assert _segment(db_url, {"not": {"opened": "spasm-education"}}) == {"cat@example.com"}


def test_latest_checkin_answer_wins(db_url: str, migrated_db: Database) -> None:
    db = migrated_db
    t0 = datetime(2026, 11, 23, 10, tzinfo=UTC)
    with db.begin() as conn:
        sid = insert_subscriber(conn, "dee@example.com", t0, public_id="a" * 32, confirmed_at=t0)
        activity.record(
            conn, sid, activity.CHECKIN, t0, campaign_id="c", step_id="03", value="same"
        )
        later = t0 + timedelta(days=7)
        activity.record(
            conn, sid, activity.CHECKIN, later, campaign_id="c", step_id="04", value="worse"
        )
        # a late-arriving older answer must not replace the newer one
        activity.record(
            conn, sid, activity.CHECKIN, t0, campaign_id="c", step_id="04", value="better"
        )
        with pytest.raises(ValueError, match="check-in answer"):
            activity.record(conn, sid, activity.CHECKIN, t0, value="fine")
    assert _segment(db_url, {"checkin": "worse"}) == {"dee@example.com"}
    assert _segment(db_url, {"checkin": "same"}) == set()


@pytest.mark.parametrize("bad", ["", "/05", "a/b/c"])
def test_bad_step_references_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="CAMPAIGN/STEP"):
        parse_rule({"clicked": bad})
    with pytest.raises(ValidationError):
        parse_rule({"checkin": "fine"})
