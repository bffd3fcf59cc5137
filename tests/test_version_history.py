"""Nobody drops reviewed work by accident (campaigns.versions): activating a version says which
clinician-approved versions' changes it would drop (the caller asks twice), and a retired
version comes back as a new draft with its files, reviewed like any draft."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection

from campaigns import versions
from campaigns.review import Actor
from campaigns.versions import Version, VersionError
from staff import audit
from storage import utcnow
from templates import Renderer
from tests.support.cli import CLI

CID = "spasm-education"
STEP = "02-the-first-few-days.md"
MARA = Actor(1, "mara@clinic.example", "marketing")
CLEO = Actor(2, "cleo@clinic.example", "clinician")
YEAR = timedelta(days=365)


def _changed(conn: Connection, v: Version, words: str, renderer: Renderer) -> Version:
    files = dict(v.files)
    files[STEP] = files[STEP].replace('subject: "', f'subject: "{words} ', 1)
    now = utcnow()
    return versions.save_draft(
        conn, v, files, MARA, now, audit=audit.writer(None, now), renderer=renderer
    )


def test_activating_an_older_branch_names_the_approved_changes_it_drops(cli: CLI) -> None:
    from app.context import AppContext
    from app.settings import load_settings

    assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    now = utcnow()
    log = audit.writer(None, now)
    try:
        with ctx.db.begin() as conn:
            # Version 2 starts from the live version 1; it is approved and goes live.
            two = _changed(
                conn, versions.start_draft(conn, CID, MARA, now, audit=log), "Two:", ctx.renderer
            )
            two = versions.submit(conn, two, ctx.renderer, now, audit=log)
            two = versions.approve(conn, two, CLEO, "", now, YEAR, audit=log)
            assert versions.dropped_by(conn, two) == []  # it carries everything approved
            two = versions.activate(conn, two, now, audit=log)
            # Version 3 restores version 1 (based on it, not on the live version 2).
            (one,) = [v for v in versions.versions_of(conn, CID) if v.number == 1]
            with pytest.raises(VersionError, match="only a retired version"):
                versions.restore(conn, two, MARA, now, audit=log)
            three = versions.restore(conn, one, MARA, now, audit=log)
            assert (three.number, three.state, three.based_on) == (3, versions.DRAFT, one.id)
            assert three.files == one.files
            with pytest.raises(VersionError, match="already has an open draft"):
                versions.restore(conn, one, MARA, now, audit=log)
            three = versions.submit(conn, three, ctx.renderer, now, audit=log)
            three = versions.approve(conn, three, CLEO, "", now, YEAR, audit=log)
            # Activating it would drop version 2's approved change: said, so the caller asks.
            assert [v.number for v in versions.dropped_by(conn, three)] == [2]
            # A draft started from the live version 2 drops nothing.
            versions.retire(conn, three, now, audit=log)
            four = versions.start_draft(conn, CID, MARA, now, audit=log)
            assert four.based_on == two.id and versions.dropped_by(conn, four) == []
            actions = [e.action for e in audit.entries(conn, target_id=three.id)][::-1]
        assert actions[0] == "content.restore"
    finally:
        ctx.close()
