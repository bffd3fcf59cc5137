"""Campaign content as versions in the database: init seeds the library (active, not yet
reviewed here), the workflow's rules, import/export round trips, and every process sending the
active version (the ledger can tell which)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns import BUNDLED_LIBRARY, versions
from campaigns.versions import Actor, VersionError
from staff import audit
from storage import Database, utcnow
from tests.support.cli import CLI
from tests.support.console import STAFF, users_cmd

INTERVAL = timedelta(days=365)


def _db(db_url: str) -> Database:
    return Database(db_url)


def test_init_seeds_the_library_as_active_unreviewed_versions(cli: CLI, db_url: str) -> None:
    assert cli("init").code == 0
    assert cli("init").code == 0  # idempotent: no second version
    db = _db(db_url)
    try:
        with db.begin() as conn:
            active = versions.in_state(conn, versions.ACTIVE)
            everything = versions.versions_of(conn, "spasm-education")
    finally:
        db.dispose()
    assert [v.campaign_id for v in active] == ["spasm-education"]
    assert len(everything) == 1
    v = active[0]
    assert v.origin == versions.BUNDLED and not v.clinic_reviewed
    assert (
        v.files["campaign.yaml"]
        == (BUNDLED_LIBRARY / "spasm-education" / "campaign.yaml").read_text()
    )
    # Still sends out of the box, and preview reads the same content.
    preview = cli("campaigns", "preview", "spasm-education", "1", "--symptoms", "lower_back")
    assert preview.code == 0 and "Subject:" in preview.out


def test_workflow_rules(cli: CLI, db_url: str) -> None:
    from app.context import AppContext
    from app.settings import load_settings

    assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    marketing = Actor(1, STAFF["marketing"], "marketing")
    cleo = Actor(2, STAFF["clinician"], "clinician")
    cora = Actor(3, "cora@clinic.example", "clinician")
    now = utcnow()
    log = audit.writer(None, now)
    try:
        _ = ctx.catalog
        with ctx.db.begin() as conn:
            draft = versions.start_draft(conn, "spasm-education", marketing, now, audit=log)
            again = versions.start_draft(conn, "spasm-education", cleo, now, audit=log)
            assert again.id == draft.id
            files = dict(draft.files)
            files["02-the-first-few-days.md"] = files["02-the-first-few-days.md"].replace(
                'subject: "', 'subject: "Edited — ', 1
            )
            draft = versions.save_draft(
                conn, draft, files, cora, now, audit=log, renderer=ctx.renderer
            )
            with pytest.raises(VersionError, match="only an approved version"):
                versions.activate(conn, draft, now, audit=log)
            draft = versions.submit(conn, draft, ctx.renderer, now, audit=log)
            assert draft.state == versions.IN_REVIEW
            with pytest.raises(VersionError, match="only a draft can be changed"):
                versions.save_draft(
                    conn, draft, files, marketing, now, audit=log, renderer=ctx.renderer
                )
            with pytest.raises(VersionError, match="only a clinician"):
                versions.approve(conn, draft, marketing, "", now, INTERVAL, audit=log)
            with pytest.raises(VersionError, match="you edited this version"):
                versions.approve(conn, draft, cora, "", now, INTERVAL, audit=log)
            approved = versions.approve(
                conn, draft, cleo, "Checked against sources", now, INTERVAL, audit=log
            )
            assert approved.state == versions.APPROVED
            assert approved.reviewed_by == cleo.name and approved.review_due_at == now + INTERVAL
            with pytest.raises(VersionError, match="only a draft can be changed"):
                versions.save_draft(  # immutable
                    conn, approved, files, marketing, now, audit=log, renderer=ctx.renderer
                )
            before = versions.generation(conn)
            live = versions.activate(conn, approved, now, audit=log)
            assert versions.generation(conn) != before
            states = {v.number: v.state for v in versions.versions_of(conn, "spasm-education")}
            # Each step wrote its audit entry in the step's own transaction.
            actions = [e.action for e in audit.entries(conn, target_id=live.id)][::-1]
        assert actions == [
            "content.draft",
            "content.edit",
            "content.submit",
            "content.approve",
            "content.activate",
        ]
        assert states == {1: versions.RETIRED, 2: versions.ACTIVE}
        # The running process picks the new content up and tags it with its version.
        assert ctx.refresh_content()
        campaign = ctx.catalog.get("spasm-education")
        assert campaign is not None and campaign.version_id == live.id
        assert campaign.step("the-first-few-days").default.subject.startswith("Edited —")
    finally:
        ctx.close()


def test_bundled_content_is_cleared_by_one_clinician_review(cli: CLI) -> None:
    from app.context import AppContext
    from app.settings import load_settings

    assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    try:
        with ctx.db.begin() as conn:
            (bundled,) = versions.in_state(conn, versions.ACTIVE)
            assert bundled.review_due(utcnow())
            done = versions.approve(
                conn,
                bundled,
                Actor(9, "cleo@clinic.example", "clinician"),
                "",
                utcnow(),
                INTERVAL,
                audit=audit.writer(None, utcnow()),
            )
        assert done.state == versions.ACTIVE and done.clinic_reviewed
        assert not done.review_due(utcnow())
        assert done.review_due(utcnow() + INTERVAL + timedelta(days=1))
    finally:
        ctx.close()


def test_import_and_export_round_trip(cli: CLI, tmp_path: Path, db_url: str) -> None:
    assert cli("init").code == 0
    assert users_cmd(cli, "add", STAFF["clinician"], "--role", "clinician").code == 0
    out = tmp_path / "export"
    run = cli("campaigns", "export", "spasm-education", str(out))
    assert run.code == 0, run.err
    folder = out / "spasm-education"
    assert (folder / "campaign.yaml").read_text() == (
        BUNDLED_LIBRARY / "spasm-education" / "campaign.yaml"
    ).read_text()
    assert not (folder / "approval.json").exists()  # nobody here reviewed the bundled content
    assert cli("campaigns", "validate", str(out)).code == 0
    # Importing the same content changes nothing.
    assert cli("campaigns", "import", str(out), "--json").json() == {"spasm-education": "unchanged"}
    # Edited content arrives in review: live only once a clinician here approves it.
    step = folder / "02-the-first-few-days.md"
    step.write_text(step.read_text().replace('subject: "', 'subject: "New — ', 1))
    assert cli("campaigns", "import", str(out), "--json").json() == {"spasm-education": "in_review"}
    db = _db(db_url)
    try:
        with db.begin() as conn:
            states = [v.state for v in versions.versions_of(conn, "spasm-education")]
    finally:
        db.dispose()
    assert states == ["in_review", "active"]
    # A broken folder imports nothing and says what is wrong.    # A broken folder imports nothing and says what is wrong.
    step.write_text("no front matter here\n")
    bad = cli("campaigns", "import", str(out))
    assert (
        bad.code == 1
        and "nothing was imported" in bad.err
        and "02-the-first-few-days.md" in bad.err
    )
    assert cli("campaigns", "export", "nope", str(tmp_path / "x")).code == 1
    assert cli("campaigns", "export", "spasm-education", str(out)).code == 1  # not empty


def test_the_ledger_can_tell_which_version_was_sent(cli: CLI, tmp_path: Path, db_url: str) -> None:
    """Every campaign email is rendered from an active version whose id the catalog carries."""
    from app.context import AppContext
    from app.settings import load_settings

    assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    try:
        campaign = ctx.catalog.get("spasm-education")
        assert campaign is not None
        with ctx.db.begin() as conn:
            (active,) = versions.in_state(conn, versions.ACTIVE)
            assert (
                conn.execute(
                    select(versions.campaign_versions.c.id).where(
                        versions.campaign_versions.c.state == versions.ACTIVE
                    )
                ).scalar_one()
                == campaign.version_id
                == active.id
            )
    finally:
        ctx.close()


BOMB = "{{ [[('x' * 10000)] * 10000] * 6 }}"  # six 100 MB strings if it were ever rendered
STEP_FILE = "02-the-first-few-days.md"


def test_a_draft_whose_template_cannot_render_safely_is_not_saved(
    cli: CLI, tmp_path: Path, db_url: str
) -> None:
    """Saving checks every changed step with the bounded template check: a memory bomb, a
    sandbox escape, a syntax error or a runtime mistake is refused with its file and line and
    nothing is stored; a bad text stored before the check existed is reported, never rendered
    (it stays a finding, bounded in memory), and does not block editing another step."""
    import tracemalloc

    from sqlalchemy import update

    from app.context import AppContext
    from app.settings import load_settings

    assert cli("init").code == 0
    ctx = AppContext.from_settings(load_settings())
    marketing = Actor(1, STAFF["marketing"], "marketing")
    now = utcnow()
    log = audit.writer(None, now)
    try:
        _ = ctx.catalog
        with ctx.db.begin() as conn:
            draft = versions.start_draft(conn, "spasm-education", marketing, now, audit=log)
        stored = dict(draft.files)
        line = (stored[STEP_FILE] + "\n").count("\n") + 1
        for mistake, words in (
            (BOMB, "longer than"),
            ("{{ ''.__class__ }}", "Python internals"),
            ("{% if first_name %}", "template syntax"),
            ("{{ 1 + 'a' }}", "wrong kind"),
        ):
            files = {**stored, STEP_FILE: f"{stored[STEP_FILE]}\n{mistake}\n"}
            with pytest.raises(versions.TemplateRefused) as refused, ctx.db.begin() as conn:
                versions.save_draft(
                    conn, draft, files, marketing, now, audit=log, renderer=ctx.renderer
                )
            first = refused.value.problems[0]
            assert (first.file, first.line) == (STEP_FILE, line), (mistake, first)
            assert words in first.message, (mistake, first.message)
            assert str(refused.value).startswith(f"Not saved: {STEP_FILE}:{line}: "), mistake
        with ctx.db.begin() as conn:
            assert versions.require(conn, draft.id).files == stored  # nothing stored
            assert [e.action for e in audit.entries(conn, target_id=draft.id)] == ["content.draft"]

        # A bomb stored before saving checked templates (written straight to the table).
        bad = {**stored, STEP_FILE: f"{stored[STEP_FILE]}\n{BOMB}\n"}
        with ctx.db.begin() as conn:
            conn.execute(
                update(versions.campaign_versions)
                .where(versions.campaign_versions.c.id == draft.id)
                .values(files=bad, files_sha256=versions.files_digest(bad))
            )
        tracemalloc.start()
        try:
            parsed, problems = versions.parse("spasm-education", bad, ctx.renderer)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert parsed is None and peak < 64 * 2**20, peak  # unbounded: 600 MB
        assert any(
            p.file.endswith(STEP_FILE) and p.line == line and "longer than" in p.message
            for p in problems
        ), problems
        # Another step can still be edited; the stored bomb keeps it out of review.
        other = "03-hurt-is-not-harm.md"
        edited = {**bad, other: bad[other].replace('subject: "', 'subject: "Edited — ', 1)}
        with ctx.db.begin() as conn:
            draft = versions.save_draft(
                conn, draft, edited, marketing, now, audit=log, renderer=ctx.renderer
            )
            with pytest.raises(VersionError, match="fix the"):
                versions.submit(conn, draft, ctx.renderer, now, audit=log)
            fixed = {**edited, STEP_FILE: stored[STEP_FILE]}
            draft = versions.save_draft(
                conn, draft, fixed, marketing, now, audit=log, renderer=ctx.renderer
            )
            assert versions.submit(conn, draft, ctx.renderer, now, audit=log).state == "in_review"
    finally:
        ctx.close()

    # The command-line import refuses the same bomb, naming the file and line.
    out = tmp_path / "export"
    assert cli("campaigns", "export", "spasm-education", str(out)).code == 0
    step = out / "spasm-education" / STEP_FILE
    step.write_text(f"{step.read_text()}\n{BOMB}\n")
    refused_import = cli("campaigns", "import", str(out))
    assert refused_import.code == 1 and "nothing was imported" in refused_import.err
    assert f"{STEP_FILE}:{line}" in refused_import.err and "longer than" in refused_import.err
