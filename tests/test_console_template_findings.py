"""Template mistakes and memory bombs in both console previews are findings with their line,
never a 500; a stored draft that breaks a bound opens as a finding."""

from __future__ import annotations

import pytest

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
def test_both_previews_and_a_saved_draft_show_findings(sqlite_cli: CLI) -> None:
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
        # Saved, the memory bomb opens as a finding (rendering stops before the memory).
        saved = marketing.post(
            editor, data={**form, "body": f"Hello,\n\n{MISTAKES[-1]}\n", "csrf_token": csrf}
        )
        assert saved.status_code == 303
        reopened = marketing.get(saved.headers["location"])
        assert reopened.status_code == 200
        assert 'data-finding="error"' in reopened.text and "longer than" in reopened.text
    finally:
        console.ctx.close()
