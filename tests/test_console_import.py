"""CSV import from the console: the CLI's checks and reject reasons, a progress page, a summary
and a reject report; the people imported with consent are confirmed and enrolled; each import
is audited; a job is only its starter's."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns.tables import enrollments
from staff.tables import audit_log
from subscribers.tables import subscribers
from tests.support.cli import CSV_HEADER
from tests.support.console import Console
from tests.support.wait import wait_until

ROWS = [
    "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
    "Bob@Example.com,Bob,neck,Europe/Berlin,true,2026-11-01T10:00:00Z,clinic",
    "not-an-email,Cy,neck,,yes,,",
    "dee@example.com,Dee,neck,,no,,",
    "eve@example.com,Eve,elbow_pain,,yes,,",
    "fay@example.com,Fay,neck,Mars/Base,yes,,",
]


def _upload(client: TestClient, token: str, body: bytes, name: str = "people.csv") -> object:
    return client.post(
        "/admin/import",
        data={"csrf_token": token},
        files={"file": (name, body, "text/csv")},
    )


def _finished(client: TestClient, location: str) -> str:
    def done() -> str | None:
        page = client.get(location, headers={"HX-Request": "true"})
        assert page.status_code == 200, page.text
        return page.text if "Done." in page.text else None

    return wait_until(done, timeout=30, message="the import never finished")


def _count(html: str, key: str) -> int:
    found = re.search(rf'data-count="{key}">(\d+)<', html)
    assert found, html
    return int(found.group(1))


def test_import_from_the_console(console: Console) -> None:
    client, token = console.signed_in("marketing")
    assert 'name="file"' in client.get("/admin/import").text
    body = ("\ufeff" + CSV_HEADER + "".join(r + "\n" for r in ROWS)).encode()
    started = _upload(client, token, body)
    assert started.status_code == 303  # type: ignore[attr-defined]
    location = started.headers["location"]  # type: ignore[attr-defined]
    html = _finished(client, location)
    assert [_count(html, k) for k in ("imported", "updated", "unchanged", "rejected")] == [
        2,
        0,
        0,
        4,
    ]
    for reason in ("no consent", "unknown symptom code: elbow_pain", "unknown time zone"):
        assert reason in html
    # the reject report: the CLI's columns, spreadsheet-safe
    report = client.get(location + "/rejects.csv")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = report.text.splitlines()
    assert lines[0] == "line,email,reason" and len(lines) == 5
    assert any(line.startswith("4,not-an-email,") for line in lines)
    with console.ctx.db.begin() as conn:
        statuses = dict(conn.execute(select(subscribers.c.email_key, subscribers.c.status)).all())
        enrolled = conn.execute(select(func.count()).select_from(enrollments)).scalar_one()
        audited = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail).where(
                audit_log.c.action == "subscribers.import"
            )
        ).all()
    assert statuses == {"ann@example.com": "confirmed", "bob@example.com": "confirmed"}
    assert enrolled >= 2
    assert [(a, d["imported"], d["rejected"]) for a, d in audited] == [
        ("mara@clinic.example", 2, 4)
    ]
    # the same file again changes nothing
    again = _upload(client, token, body)
    html = _finished(client, again.headers["location"])  # type: ignore[attr-defined]
    assert [_count(html, k) for k in ("imported", "unchanged", "rejected")] == [0, 2, 4]
    # another staff member cannot see this import or its report
    other, _ = console.signed_in("ops")
    assert other.get(location).status_code == 404
    assert other.get(location + "/rejects.csv").status_code == 404


def test_a_file_that_cannot_be_imported_is_one_message_and_writes_nothing(
    console: Console,
) -> None:
    client, token = console.signed_in("marketing")
    bad = _upload(client, token, b"email,first_name\n\xff\xfe broken\n")
    assert bad.status_code == 422  # type: ignore[attr-defined]
    text = bad.text  # type: ignore[attr-defined]
    assert "people.csv: not UTF-8 text" in text and "clinicmail-import-" not in text
    no_email = _upload(client, token, b"name,consent\nAnn,yes\n")
    assert "no &#39;email&#39; column" in no_email.text  # type: ignore[attr-defined]
    nothing = client.post("/admin/import", data={"csrf_token": token})
    assert nothing.status_code == 422 and "Choose a CSV file" in nothing.text
    with console.ctx.db.begin() as conn:
        assert conn.execute(select(func.count()).select_from(subscribers)).scalar_one() == 0
