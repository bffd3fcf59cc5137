"""The audit log page for ops: readable rows (who, what in words, when in the clinic's time zone
to the minute), a line diff of a text change, keyset pages, and filters kept in the URL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from staff import audit
from tests.support.console import STAFF, Console

SUMMER = datetime(2026, 7, 1, 10, 5, 42, 123456, tzinfo=UTC)  # 11:05 in London (BST)


def _next(html: str) -> str:
    found = re.search(r'href="([^"]+)" id="next-page"', html)
    return found.group(1).replace("&amp;", "&") if found else ""


def test_rows_read_as_words_with_a_diff_and_the_clinic_zone(console: Console) -> None:
    with console.ctx.db.begin() as conn:
        audit.record(
            conn,
            None,
            "campaign.save",
            "campaign",
            "back-basics",
            SUMMER,
            {"file": "01-welcome.md", "before": "Hello\nStand up\nBye", "after": "Hello\nSit\nBye"},
        )
        audit.record(conn, None, "subscriber.pause", "subscriber", "a" * 32, SUMMER, {"weeks": 2})
    client, _ = console.signed_in("ops")
    html = client.get("/admin/ops/audit").text
    assert "When (Europe/London)" in html
    assert "01 Jul 2026 11:05 BST" in html and "10:05" not in html and "42.123" not in html
    assert "paused a person&#39;s email" in html or "paused a person's email" in html
    assert "<dt>weeks</dt><dd>2</dd>" in html
    assert '<span class="diff-remove">- Stand up</span>' in html
    assert '<span class="diff-add">+ Sit</span>' in html
    assert '<span class="diff-context">  Hello</span>' in html
    assert "1 added, 1 removed lines" in html
    assert '{"before"' not in html  # no raw JSON
    assert console.signed_in("marketing")[0].get("/admin/ops/audit").status_code == 403


def test_pages_by_cursor_with_the_filter_in_the_url(console: Console) -> None:
    with console.ctx.db.begin() as conn:
        for i in range(230):
            action = "subscriber.view" if i % 2 else "subscriber.export"
            audit.record(
                conn, None, action, "subscriber", f"{i:032d}", SUMMER + timedelta(minutes=i)
            )
    client, _ = console.signed_in("ops")
    url, seen = "/admin/ops/audit?action=subscriber.view&actor=cli", []
    while url:
        html = client.get(url).text
        assert "subscriber.export" not in html
        seen += [int(t) for t in re.findall(r"subscriber (\d{32})</code>", html)]
        url = _next(html)
        if url:
            assert "action=subscriber.view" in url and "actor=cli" in url
            assert re.search(r"before=\d+", url)
            assert 'id="first-page"' in client.get(url).text
    assert seen == [i for i in reversed(range(230)) if i % 2]  # each once, newest first
    # someone else's entries are not cli's
    theirs = client.get("/admin/ops/audit", params={"actor": STAFF["ops"]}).text
    assert not re.search(r"subscriber \d{32}</code>", theirs)
