"""Headers are checked where they are written: a subject, preheader or first name with a line
break or another control character, or past its length, is refused when it is authored (the
console's editor and newsletter forms, `campaigns validate`, the CSV import, the signup), with
the field named, and never reaches a send."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns import BUNDLED_LIBRARY as LIBRARY
from campaigns import versions
from campaigns.newsletters import newsletters
from core.headers import header_problem
from tests.support.backends import sqlite_only
from tests.support.cli import CLI, write_csv
from tests.support.console import Console

CID = "spasm-education"
STEP = "02-the-first-few-days.md"
BAD = ["Week 2\r\nBcc: everyone@example.com", "Week 2\u001b[31m", "A" * 151]


def test_the_rule() -> None:
    assert header_problem("Hurt is not harm: what pain means", max_length=150) is None
    assert header_problem("\U0001f469\u200d\u2695\ufe0f tips", max_length=150) is None  # ZWJ
    assert "line break" in str(header_problem("a\nb", max_length=150))
    assert "line break" in str(header_problem("a\u2028b", max_length=150))
    assert "U+0007" in str(header_problem("a\u0007b", max_length=150))
    assert "at most 150" in str(header_problem("a" * 151, max_length=150))


@pytest.mark.parametrize("subject", BAD)
def test_campaigns_validate_names_the_file_and_the_subject(
    sqlite_cli: CLI, tmp_path: Path, subject: str
) -> None:
    folder = tmp_path / "lib"
    shutil.copytree(LIBRARY / CID, folder / CID)
    step = folder / CID / STEP
    text = step.read_text(encoding="utf-8")
    escaped = subject.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    step.write_text(
        re.sub(r"(?m)^subject: .*$", lambda _m: f'subject: "{escaped}"', text, count=1),
        encoding="utf-8",
    )
    run = sqlite_cli("campaigns", "validate", str(folder))
    assert run.code == 1
    problem = [line for line in (run.out + run.err).splitlines() if STEP in line]
    assert problem and "subject" in problem[0], run.out + run.err


def test_the_csv_import_rejects_a_first_name_that_cannot_be_a_header(
    sqlite_cli: CLI, tmp_path: Path
) -> None:
    rows = [
        "ok@example.com,Ann,neck,Europe/London,yes,,",
        '"bell@example.com","An\u0007n",neck,Europe/London,yes,,',
        '"lf@example.com","Ann\nBcc: x",neck,Europe/London,yes,,',
        f"long@example.com,{'A' * 51},neck,Europe/London,yes,,",
    ]
    write_csv(tmp_path / "p.csv", rows)
    run = sqlite_cli(
        "subscribers", "import", str(tmp_path / "p.csv"), "--report", "rej.csv", "--json"
    )
    assert run.code == 0, run.err
    assert run.json()["imported"] == 1 and run.json()["rejected"] == 3
    report = (tmp_path / "rej.csv").read_text(encoding="utf-8")
    assert report.count("first_name") == 3, report


@sqlite_only("a header is judged before anything is stored")
def test_the_console_editor_refuses_a_bad_subject_and_keeps_the_draft(console: Console) -> None:
    marketing, token = console.signed_in("marketing")
    assert (
        marketing.post(f"/admin/campaigns/{CID}/drafts", data={"csrf_token": token}).status_code
        == 303
    )
    with console.ctx.db.begin() as conn:
        draft = next(v for v in versions.versions_of(conn, CID) if v.state == "draft")
    before = draft.files[STEP]
    for subject, preheader in ((BAD[0], ""), ("Fine", "Two\nlines"), (BAD[2], "")):
        r = marketing.post(
            f"/admin/campaigns/{CID}/versions/{draft.id}/files/{STEP}",
            data={
                "csrf_token": token,
                "subject": subject,
                "preheader": preheader,
                "body": "Hello\n",
                "settings": "",
            },
        )
        assert r.status_code == 422, r.text
        field = "preheader" if preheader else "subject"
        assert f"Not saved: the {field}" in r.text
    with console.ctx.db.begin() as conn:
        again = next(v for v in versions.versions_of(conn, CID) if v.id == draft.id)
    assert again.files[STEP] == before


@sqlite_only("a header is judged before anything is stored")
def test_the_newsletter_form_refuses_a_bad_subject_or_preheader(console: Console) -> None:
    marketing, token = console.signed_in("marketing")
    form = {
        "slug": "december-news",
        "subject": "Our December opening hours",
        "preheader": "Open until the 23rd",
        "body": "Hello {{ first_name }},\n\nWe are open until 23 December.\n",
        "local_at": "2026-12-10T10:00",
        "seg_codes": ["lower_back"],
        "csrf_token": token,
    }
    for field, value in (("subject", BAD[0]), ("preheader", "x\u0000y"), ("subject", BAD[2])):
        r = marketing.post("/admin/newsletters", data={**form, field: value})
        assert r.status_code == 422, r.text
        assert f"the {field}" in r.text
    created = marketing.post("/admin/newsletters", data=form)
    assert created.status_code == 303
    location = created.headers["location"]
    saved = marketing.post(location, data={**form, "subject": "Hours\r\nBcc: x"})
    assert saved.status_code in (409, 422) and "the subject" in saved.text
    with console.ctx.db.begin() as conn:
        subjects = conn.execute(select(newsletters.c.subject)).scalars().all()
        assert subjects == ["Our December opening hours"]
