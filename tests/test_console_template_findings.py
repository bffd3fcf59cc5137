"""Template mistakes and memory bombs in both console previews are findings with their line,
never a 500; saving one is refused with the text kept; a stored draft that breaks a bound opens
as a finding."""

from __future__ import annotations

import tracemalloc

import pytest
from sqlalchemy import update

from campaigns import newsletters as nl
from campaigns import versions
from tests.support.cli import CLI
from tests.support.console import make_console
from tests.test_console_editor import CID, STEP, _editor_form

MISTAKES = [
    "{{ 1 + 'a' }}",
    "{{ '{0}'.format() }}",
    "{{ 'a'.index('b') }}",
    "{% include 'other.md' %}",
    "{{ [[('x' * 10000)] * 10000] * 6 }}",
]


@pytest.mark.real_clock
def test_both_previews_show_findings_and_saving_refuses_them(sqlite_cli: CLI) -> None:
    console = make_console(sqlite_cli)
    try:
        marketing, csrf = console.signed_in("marketing")
        assert (
            marketing.post(f"/admin/campaigns/{CID}/drafts", data={"csrf_token": csrf}).status_code
            == 303
        )
        with console.ctx.db.begin() as conn:
            draft_id = {v.state: v.id for v in versions.versions_of(conn, CID)}["draft"]
        editor = f"/admin/campaigns/{CID}/versions/{draft_id}/files/{STEP}"
        form = _editor_form(marketing.get(editor).text)
        for mistake in MISTAKES:
            body = f"Hello,\n\n{mistake}\n"
            shown = marketing.post(
                f"/admin/campaigns/{CID}/versions/{draft_id}/preview",
                data={**form, "body": body},
                headers={"X-CSRF-Token": csrf},
            )
            assert shown.status_code == 200, (mistake, shown.status_code)
            assert 'data-finding="error"' in shown.text, mistake
            assert "line 3" in shown.text, mistake
            news = marketing.post(
                "/admin/newsletters/preview",
                data={
                    "slug": "news",
                    "subject": "News",
                    "preheader": "News",
                    "body": body,
                    "local_at": "2026-12-10T10:00",
                    "csrf_token": csrf,
                },
            )
            assert news.status_code == 200, (mistake, news.status_code)
            assert 'data-finding="error"' in news.text, mistake
        # Saving the memory bomb is refused: 422, the text kept in the form, the finding shown,
        # nothing stored.
        with console.ctx.db.begin() as conn:
            stored = versions.require(conn, draft_id).files
        bomb = f"Hello,\n\n{MISTAKES[-1]}\n"
        saved = marketing.post(editor, data={**form, "body": bomb, "csrf_token": csrf})
        assert saved.status_code == 422
        assert _editor_form(saved.text)["body"] == bomb
        assert "Not saved: " + STEP in saved.text and "longer than" in saved.text
        assert 'data-finding="error"' in saved.text
        with console.ctx.db.begin() as conn:
            assert versions.require(conn, draft_id).files == stored
        # A bomb stored before saves were checked opens as a finding, never rendered: the
        # editor and the campaign page stay small in memory.
        bad = {**stored, STEP: stored[STEP] + f"\n{MISTAKES[-1]}\n"}
        with console.ctx.db.begin() as conn:
            conn.execute(
                update(versions.campaign_versions)
                .where(versions.campaign_versions.c.id == draft_id)
                .values(files=bad, files_sha256=versions.files_digest(bad))
            )
        for url in (editor, f"/admin/campaigns/{CID}"):
            tracemalloc.start()
            try:
                opened = marketing.get(url)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert opened.status_code == 200, url
            assert "longer than" in opened.text, url
            assert peak < 64 * 2**20, (url, peak)  # rendered, it would be 600 MB
    finally:
        console.ctx.close()


@pytest.mark.real_clock
def test_a_newsletter_with_a_template_bomb_is_not_saved(sqlite_cli: CLI) -> None:
    """Creating or saving a newsletter runs the same bounded check: 422 with the text kept and
    the finding shown, nothing stored."""
    console = make_console(sqlite_cli)
    try:
        marketing, csrf = console.signed_in("marketing")
        form = {
            "slug": "news",
            "subject": "News",
            "preheader": "News",
            "local_at": "2026-12-10T10:00",
            "csrf_token": csrf,
        }
        bomb = f"Hello,\n\n{MISTAKES[-1]}\n"
        refused = marketing.post("/admin/newsletters", data={**form, "body": bomb})
        assert refused.status_code == 422
        assert "Not saved: line" in refused.text and "longer than" in refused.text
        assert "[[(&#39;x&#39; * 10000)] * 10000] * 6" in refused.text  # the text is kept
        with console.ctx.db.begin() as conn:
            assert nl.by_slug(conn, "news") is None
        made = marketing.post("/admin/newsletters", data={**form, "body": "Hello,\n\nNews.\n"})
        assert made.status_code == 303
        saved = marketing.post(made.headers["location"], data={**form, "body": bomb})
        assert saved.status_code == 422
        assert "Not saved: line" in saved.text and 'data-finding="error"' in saved.text
        with console.ctx.db.begin() as conn:
            stored = nl.by_slug(conn, "news")
        assert stored is not None and stored.body.strip() == "Hello,\n\nNews."
    finally:
        console.ctx.close()
