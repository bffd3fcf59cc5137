"""Campaign actions that change what people get say so first: activating names how many people
get the new content, and when it would drop changes a clinician approved since its base it names
them and needs a second, explicit confirmation; retiring a step names whom it affects; a retired
version comes back as a new draft."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from campaigns import versions
from staff.tables import audit_log
from tests.support.console import Console

CID = "spasm-education"
STEP = "02-the-first-few-days.md"


def _states(console: Console) -> dict[int, str]:
    with console.ctx.db.begin() as conn:
        return {v.number: v.state for v in versions.versions_of(conn, CID)}


def _by_number(console: Console, number: int) -> versions.Version:
    with console.ctx.db.begin() as conn:
        return next(v for v in versions.versions_of(conn, CID) if v.number == number)


def _draft_approved(
    console: Console, marketing: Any, m_token: str, clinician: Any, c_token: str
) -> versions.Version:
    assert (
        marketing.post(f"/admin/campaigns/{CID}/drafts", data={"csrf_token": m_token}).status_code
        == 303
    )
    with console.ctx.db.begin() as conn:
        draft = versions.draft_of(conn, CID)
    assert draft is not None
    base = f"/admin/campaigns/{CID}/versions/{draft.id}"
    assert marketing.post(base + "/submit", data={"csrf_token": m_token}).status_code == 303
    approved = clinician.post(base + "/approve", data={"csrf_token": c_token, "note": "ok"})
    assert approved.status_code == 303
    return _by_number(console, draft.number)


def test_activation_that_drops_approved_changes_asks_twice(console: Console) -> None:
    marketing, m_token = console.signed_in("marketing")
    clinician, c_token = console.signed_in("clinician")
    v2 = _draft_approved(console, marketing, m_token, clinician, c_token)
    # Started while version 2 waited: it copies the live version 1, not version 2.
    v3 = _draft_approved(console, marketing, m_token, clinician, c_token)
    assert v3.based_on == _by_number(console, 1).id

    # Version 2 goes live (nothing dropped: one confirmation naming the count).
    asked = marketing.post(
        f"/admin/campaigns/{CID}/versions/{v2.id}/activate", data={"csrf_token": m_token}
    )
    assert asked.status_code == 200 and "Activate version 2?" in asked.text
    assert re.search(r"the [\d,]+ (person|people) going through this campaign", asked.text)
    assert 'name="confirm" value="yes"' in asked.text and "would be dropped" not in asked.text
    assert _states(console)[2] == "approved"
    done = marketing.post(
        f"/admin/campaigns/{CID}/versions/{v2.id}/activate",
        data={"csrf_token": m_token, "confirm": "yes"},
    )
    assert done.status_code == 303 and done.headers["location"].endswith("note=activated")
    assert _states(console)[2] == "active"

    # Version 3 would drop version 2's approved changes: the page names them, and the plain
    # confirmation (a page read before version 2 went live) is asked again, not obeyed.
    url = f"/admin/campaigns/{CID}/versions/{v3.id}/activate"
    for confirm in ("", "yes"):
        asked = marketing.post(url, data={"csrf_token": m_token, "confirm": confirm})
        assert asked.status_code == 200
        assert "Version 2, approved by" in asked.text and "would be dropped" in asked.text
        assert 'name="confirm" value="drop"' in asked.text
        assert "Activate and drop version 2" in asked.text
        assert _states(console)[3] == "approved" and _states(console)[2] == "active"
    done = marketing.post(url, data={"csrf_token": m_token, "confirm": "drop"})
    assert done.status_code == 303
    assert _states(console)[3] == "active" and _states(console)[2] == "retired"


def test_retired_version_restored_as_a_draft(console: Console) -> None:
    marketing, m_token = console.signed_in("marketing")
    clinician, c_token = console.signed_in("clinician")
    v2 = _draft_approved(console, marketing, m_token, clinician, c_token)
    url = f"/admin/campaigns/{CID}/versions/{v2.id}/activate"
    assert marketing.post(url, data={"csrf_token": m_token, "confirm": "yes"}).status_code == 303
    v1 = _by_number(console, 1)
    assert v1.state == "retired"
    page = marketing.get(f"/admin/campaigns/{CID}").text
    assert f"/versions/{v1.id}/restore" in page and "Restore as a draft" in page
    # Only a retired version can be restored: the live one is refused, in words.
    live = marketing.post(
        f"/admin/campaigns/{CID}/versions/{v2.id}/restore", data={"csrf_token": m_token}
    )
    assert live.status_code == 422 and "Not restored" in live.text

    restored = marketing.post(
        f"/admin/campaigns/{CID}/versions/{v1.id}/restore", data={"csrf_token": m_token}
    )
    assert restored.status_code == 303 and restored.headers["location"].endswith("note=restored")
    with console.ctx.db.begin() as conn:
        draft = versions.draft_of(conn, CID)
        entries = conn.execute(select(audit_log.c.action, audit_log.c.target_id)).all()
    assert draft is not None and draft.number == 3 and draft.based_on == v1.id
    assert draft.files == v1.files
    assert ("content.restore", draft.id) in {(a, t) for a, t in entries}
    assert "Restored as a new draft" in marketing.get(restored.headers["location"]).text
    # A second restore while that draft is open is refused, and nothing is made.
    again = marketing.post(
        f"/admin/campaigns/{CID}/versions/{v1.id}/restore", data={"csrf_token": m_token}
    )
    assert again.status_code == 422 and "already has an open draft" in again.text
    assert len(_states(console)) == 3


def test_retiring_a_step_says_whom_it_affects(console: Console) -> None:
    marketing, m_token = console.signed_in("marketing")
    assert (
        marketing.post(f"/admin/campaigns/{CID}/drafts", data={"csrf_token": m_token}).status_code
        == 303
    )
    with console.ctx.db.begin() as conn:
        draft = versions.draft_of(conn, CID)
    assert draft is not None
    url = f"/admin/campaigns/{CID}/versions/{draft.id}/files/{STEP}/retire"
    asked = marketing.post(url, data={"csrf_token": m_token})
    assert asked.status_code == 200 and "Retire the step" in asked.text
    assert re.search(r"none of the [\d,]+ (person|people) going through", asked.text)
    assert STEP in _by_number(console, draft.number).files  # nothing changed yet
    done = marketing.post(url, data={"csrf_token": m_token, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"].endswith("note=step-retired")
    assert STEP not in _by_number(console, draft.number).files
