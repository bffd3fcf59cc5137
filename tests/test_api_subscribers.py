"""/api/v1/subscribers: look a person up by the address in a JSON body (never a URL), read them
by opaque id, sign them up through the signup's own code path, change, unsubscribe, export,
erase; Idempotency-Key replays; lists page by cursor."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from campaigns.ledger import sends
from subscribers.tables import subscribers
from tests.support.api import assert_problem, bearer, new_key
from tests.support.app import ANN, app_for
from tests.support.cli import CLI
from tests.support.delivery import import_people
from tests.support.outbox import messages


def test_lookup_and_read_by_id(cli: CLI, tmp_path: Path) -> None:
    import_people(cli, tmp_path, ["ann@example.com,Ann,sciatica;lower_back,Europe/London,yes,,"])
    key = new_key(cli, "pms", "subscribers:read")
    with app_for(cli) as (client, _ctx):
        found = client.post(
            "/api/v1/subscribers/lookup", json={"email": "ANN@example.com"}, headers=bearer(key)
        )
        assert found.status_code == 200, found.text
        person = found.json()
        assert person["email"] == "ann@example.com" and person["status"] == "confirmed"
        assert person["symptoms"] == ["lower_back", "sciatica"]
        assert person["arm_and_leg"] is False
        assert len(person["id"]) == 32 and "ann" not in person["id"]
        by_id = client.get(f"/api/v1/subscribers/{person['id']}", headers=bearer(key))
        assert by_id.status_code == 200 and by_id.json() == person
        page = client.get("/api/v1/subscribers?limit=1", headers=bearer(key)).json()
        assert [p["id"] for p in page["items"]] == [person["id"]] and page["next_cursor"] is None
        exported = client.get(f"/api/v1/subscribers/{person['id']}/export", headers=bearer(key))
        assert exported.status_code == 200 and "ann@example.com" in exported.text


def test_create_is_the_signup_double_opt_in_and_replays_with_an_idempotency_key(
    cli: CLI,
) -> None:
    key = new_key(cli, "booking", "subscribers:write", "subscribers:read")
    with app_for(cli) as (client, ctx):
        headers = {**bearer(key), "Idempotency-Key": "signup-1"}
        first = client.post("/api/v1/subscribers", json=ANN, headers=headers)
        assert first.status_code == 202, first.text
        again = client.post("/api/v1/subscribers", json=ANN, headers=headers)
        assert again.status_code == 202 and again.headers.get("idempotent-replayed") == "true"
        assert again.json() == first.json()
        other = client.post(
            "/api/v1/subscribers", json={**ANN, "first_name": "Anne"}, headers=headers
        )
        assert_problem(other, 422)
        with ctx.db.begin() as conn:
            rows = conn.execute(select(subscribers.c.status)).scalars().all()
            queued = conn.execute(select(sends.c.step_id)).scalars().all()
        assert rows == ["unconfirmed"]  # stored before the answer, not confirmed
        assert queued == ["confirm"]  # the signup's confirmation email, nothing else
        assert messages(ctx) == []
        bad = client.post(
            "/api/v1/subscribers", json={**ANN, "symptoms": ["nope"]}, headers=bearer(key)
        )
        assert assert_problem(bad, 422)["errors"][0]["loc"][-1] == "symptoms"
        urgent = client.post(
            "/api/v1/subscribers",
            json={**ANN, "email": "bo@example.com", "symptoms": ["red_flag_bladder_bowel"]},
            headers=bearer(key),
        )
        assert urgent.status_code == 202 and "urgent" in urgent.json()["urgent_care"]


def test_change_unsubscribe_and_erase(cli: CLI, tmp_path: Path) -> None:
    import_people(cli, tmp_path, ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    reader = new_key(cli, "r", "subscribers:read")
    writer = new_key(cli, "w", "subscribers:write")
    with app_for(cli) as (client, _ctx):
        pid = client.post(
            "/api/v1/subscribers/lookup", json={"email": "ann@example.com"}, headers=bearer(reader)
        ).json()["id"]
        changed = client.patch(
            f"/api/v1/subscribers/{pid}", json={"symptoms": ["neck"]}, headers=bearer(writer)
        )
        assert changed.status_code == 200 and changed.json()["symptoms"] == ["neck"]
        assert changed.json()["arm_and_leg"] is False
        # neck and leg symptoms together: flagged for staff, and the flag goes with the leg
        both = client.patch(
            f"/api/v1/subscribers/{pid}",
            json={"symptoms": ["neck", "sciatica"]},
            headers=bearer(writer),
        )
        assert both.status_code == 200 and both.json()["arm_and_leg"] is True
        again = client.patch(
            f"/api/v1/subscribers/{pid}", json={"symptoms": ["neck"]}, headers=bearer(writer)
        )
        assert again.json()["arm_and_leg"] is False
        left = client.post(f"/api/v1/subscribers/{pid}/unsubscribe", headers=bearer(writer))
        assert left.status_code == 200 and left.json()["status"] == "unsubscribed"
        assert left.json()["series"] == []
        erased = client.post(f"/api/v1/subscribers/{pid}/erase", headers=bearer(writer))
        assert erased.status_code == 200
        assert_problem(client.get(f"/api/v1/subscribers/{pid}", headers=bearer(reader)), 404)
        assert_problem(
            client.post(
                "/api/v1/subscribers/lookup",
                json={"email": "ann@example.com"},
                headers=bearer(reader),
            ),
            404,
        )
