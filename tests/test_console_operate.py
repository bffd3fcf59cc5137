"""Console part 2 over HTTP: people (find, record, timeline, what comes next, pause, resume,
symptoms, export, erase), the dashboard's figures against ``clinicmail stats --json``, the outbox
and the ops pages (ops only)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import time_machine
from sqlalchemy import select

from staff.tables import audit_log
from subscribers.tables import consent_events, subscribers
from tests.support.backends import sqlite_only
from tests.support.console import STAFF, Console
from tests.support.engagement import MONDAY, deliver_events, import_and_send, send_ids, sg

ROWS = [
    "ann@example.com,Ann,lower_back;sciatica,Europe/London,yes,,",
    "bob@example.com,Bob,neck;desk_posture,Europe/London,yes,,",
    "cat@example.com,Cat,lower_back,America/New_York,yes,,",
    "dan@example.com,,neck,Europe/London,yes,,",
]


def _public_id(console: Console, email: str) -> str:
    with console.ctx.db.begin() as conn:
        return str(
            conn.execute(
                select(subscribers.c.public_id).where(subscribers.c.email_key == email)
            ).scalar_one()
        )


def _audit(console: Console, action: str) -> list[tuple[str, str]]:
    with console.ctx.db.begin() as conn:
        return [
            (r.actor, r.target_id)
            for r in conn.execute(
                select(audit_log.c.actor, audit_log.c.target_id)
                .where(audit_log.c.action == action)
                .order_by(audit_log.c.id)
            )
        ]


def _seed(console: Console, tmp_path: Path) -> None:
    import_and_send(console.cli, tmp_path, ROWS)
    ids = send_ids(console.ctx.settings.database_url)
    at = MONDAY + timedelta(hours=1)
    deliver_events(
        console.ctx.settings.database_url,
        [
            *(sg("delivered", e, at, sid) for e, sid in ids.items()),
            sg("open", "ann@example.com", at, ids["ann@example.com"]),
            sg("click", "ann@example.com", at, ids["ann@example.com"], url="https://x.example/"),
            sg("spamreport", "bob@example.com", at, ids["bob@example.com"]),
        ],
        at,
    )


def test_find_people_by_text_status_and_group(console: Console, tmp_path: Path) -> None:
    _seed(console, tmp_path)
    client, csrf = console.signed_in("marketing")

    def search(**form: str) -> str:
        response = client.post(
            "/admin/subscribers", data={**form, "csrf_token": csrf}, follow_redirects=True
        )
        assert response.status_code == 200
        # The answer's address names the search by an opaque id, never the typed text.
        if form.get("q"):
            found = re.search(r"[?&]search=([A-Za-z0-9_-]{20,})", str(response.url))
            assert found
            # The id is random, so it may hold the typed letters by chance: look elsewhere.
            rest = str(response.url).replace(found[1], "")
            assert form["q"].lower() not in rest.lower()
        return response.text

    found = search(q="ANN")
    assert "ann@example.com" in found and "bob@example.com" not in found
    by_name = search(q="Bo")
    assert "bob@example.com" in by_name and "ann@example.com" not in by_name
    # The literal "%" is not a wildcard.
    assert "Nobody matches" in search(q="%")
    group = client.get("/admin/subscribers", params={"group": "spreading"}).text
    assert "ann@example.com" in group and "cat@example.com" not in group
    confirmed = client.get("/admin/subscribers", params={"status": "confirmed"}).text
    with console.ctx.db.begin() as conn:
        statuses = dict(conn.execute(select(subscribers.c.email, subscribers.c.status)).all())
    assert statuses["bob@example.com"] != "confirmed"  # his spam report stopped his email
    assert f"{sum(s == 'confirmed' for s in statuses.values())} people found" in confirmed
    assert "bob@example.com" not in confirmed
    # htmx asks for the results only
    partial = client.post(
        "/admin/subscribers", data={"q": "cat", "csrf_token": csrf}, headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200 and "<html" not in partial.text
    assert "cat@example.com" in partial.text
    # the browser's address becomes the search's id (Back and bookmarks keep it), not its text
    pushed = partial.headers["HX-Replace-Url"]
    assert "cat" not in pushed and "search=" in pushed
    again = client.get(pushed)
    assert "cat@example.com" in again.text and "ann@example.com" not in again.text
    assert 'value="cat"' in again.text  # the search box shows what was typed
    # an unknown (or expired) search id says so and shows everyone, not an error
    gone = client.get("/admin/subscribers?search=" + "x" * 22)
    assert gone.status_code == 200 and "That search has expired" in gone.text
    assert "Unknown status" in search(status="nonsense")
    # searching is a write-shaped request: without the CSRF token it is refused
    assert client.post("/admin/subscribers", data={"q": "ann"}).status_code == 403


def test_person_page_timeline_and_what_comes_next(console: Console, tmp_path: Path) -> None:
    _seed(console, tmp_path)
    pid = _public_id(console, "ann@example.com")
    with time_machine.travel(MONDAY + timedelta(hours=2), tick=False):
        client, _ = console.signed_in("clinician")
        page = client.get(f"/admin/subscribers/{pid}")
    assert page.status_code == 200
    timeline = page.text[page.text.index('id="timeline"') :]
    for shown in ("consent", "email_education: given", "delivered", "opened", "clicked"):
        assert shown in timeline, shown
    # the email as sent: the outbox message the transport stored for ann's send
    from transports.tables import outbox

    with console.ctx.db.begin() as conn:
        (message_id,) = conn.execute(
            select(outbox.c.id).where(outbox.c.recipient == "ann@example.com")
        ).one()
    assert f'<a href="/admin/outbox/{message_id}">' in timeline
    viewer = client.get(f"/admin/outbox/{message_id}")
    assert viewer.status_code == 200 and "ann@example.com" in viewer.text
    # What comes next: the planner's answer, a week after the first email (frequency cap).
    coming = page.text[page.text.index("What comes next") : page.text.index('id="timeline"')]
    assert "30 Nov 2026 10:00 GMT" in coming, coming  # the clinic's zone, to the minute
    assert "The first few days" in coming and "at most one campaign email in any 7 days" in coming
    assert _audit(console, "subscriber.view") == [(STAFF["clinician"], pid)]


def test_pause_resume_and_symptoms_are_audited(console: Console, tmp_path: Path) -> None:
    _seed(console, tmp_path)
    pid = _public_id(console, "cat@example.com")
    client, csrf = console.signed_in("marketing")
    base = f"/admin/subscribers/{pid}"
    # CSRF first: nothing changes without the token
    assert client.post(f"{base}/pause", data={"weeks": "4"}).status_code == 403
    assert client.post(f"{base}/pause", data={"weeks": "3", "csrf_token": csrf}).status_code == 422
    assert client.post(f"{base}/pause", data={"weeks": "4", "csrf_token": csrf}).status_code == 303
    with console.ctx.db.begin() as conn:
        until = conn.execute(
            select(subscribers.c.paused_until).where(subscribers.c.public_id == pid)
        ).scalar_one()
    assert until is not None
    page = client.get(base)
    assert "paused until" in page.text and "Resume campaign email" in page.text
    assert "paused for this person" in page.text  # what comes next says why
    assert client.post(f"{base}/resume", data={"csrf_token": csrf}).status_code == 303
    with console.ctx.db.begin() as conn:
        assert (
            conn.execute(
                select(subscribers.c.paused_until).where(subscribers.c.public_id == pid)
            ).scalar_one()
            is None
        )
    bad = client.post(f"{base}/symptoms", data={"symptoms": ["nope"], "csrf_token": csrf})
    assert bad.status_code == 422
    changed = client.post(
        f"{base}/symptoms", data={"symptoms": ["neck", "sciatica"], "csrf_token": csrf}
    )
    assert changed.status_code == 303
    page = client.get(changed.headers["location"])
    assert "Symptoms changed" in page.text and "sciatica" in page.text
    with console.ctx.db.begin() as conn:
        sources = (
            conn.execute(
                select(consent_events.c.source)
                .join(subscribers, subscribers.c.id == consent_events.c.subscriber_id)
                .where(subscribers.c.public_id == pid, consent_events.c.purpose == "health_data")
            )
            .scalars()
            .all()
        )
        detail = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "subscriber.symptoms")
        ).scalar_one()
    assert "staff" in sources
    # How many codes changed, never which: the audit log outlives an erasure (docs/privacy.md).
    assert detail == {"added": 2, "removed": 1}
    assert [a for a, _ in _audit(console, "subscriber.pause")] == [STAFF["marketing"]]
    assert [a for a, _ in _audit(console, "subscriber.resume")] == [STAFF["marketing"]]


def test_export_is_the_cli_json_and_erase_needs_ops_and_the_typed_address(
    console: Console, tmp_path: Path
) -> None:
    _seed(console, tmp_path)
    pid = _public_id(console, "ann@example.com")
    client, csrf = console.signed_in("marketing")
    download = client.get(f"/admin/subscribers/{pid}/export")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/json")
    assert "attachment" in download.headers["content-disposition"]
    assert "ann" not in download.headers["content-disposition"]
    cli_json = console.cli("subscribers", "export", "ann@example.com")
    assert cli_json.code == 0
    # The same document, except that the CLI's own export is audited too and so appears in
    # the second one's audit_log section.
    from_console, from_cli = json.loads(download.text), json.loads(cli_json.out)
    console_audit, cli_audit = from_console.pop("audit_log"), from_cli.pop("audit_log")
    assert from_console == from_cli
    assert cli_audit[: len(console_audit)] == console_audit
    assert [(e["actor"], e["action"]) for e in cli_audit[len(console_audit) :]] == [
        ("cli", "subscriber.export")
    ]
    assert _audit(console, "subscriber.export") == [(STAFF["marketing"], pid), ("cli", pid)]

    # marketing may not erase: no button, and the POST is refused
    assert "Erase…" not in client.get(f"/admin/subscribers/{pid}").text
    refused = client.post(
        f"/admin/subscribers/{pid}/erase",
        data={"confirm_email": "ann@example.com", "csrf_token": csrf},
    )
    assert refused.status_code == 403

    ops, ops_csrf = console.signed_in("ops")
    form = ops.get(f"/admin/subscribers/{pid}/erase")
    assert form.status_code == 200 and "Type the person" in form.text
    wrong = ops.post(
        f"/admin/subscribers/{pid}/erase",
        data={"confirm_email": "bob@example.com", "csrf_token": ops_csrf},
    )
    assert wrong.status_code == 422 and "Nothing was erased" in wrong.text
    assert ops.get(f"/admin/subscribers/{pid}").status_code == 200
    done = ops.post(
        f"/admin/subscribers/{pid}/erase",
        data={"confirm_email": " ANN@example.com ", "csrf_token": ops_csrf},
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin/subscribers?erased=1"
    assert ops.get(f"/admin/subscribers/{pid}").status_code == 404
    assert console.cli("subscribers", "export", "ann@example.com").code == 1
    # the same erasure as the CLI: the hash stays on the suppression list
    again = console.cli("subscribers", "erase", "ann@example.com")
    assert "already on the suppression list" in again.out
    assert _audit(console, "subscriber.erase") == [(STAFF["ops"], pid)]


def _cell(html: str, table: str, row_attr: str, key: str) -> int:
    section = html[html.index(f'id="{table}"') :]
    section = section[: section.index("</table>")]
    row = section[section.index(row_attr) :]
    row = row[: row.index("</tr>")]
    found = re.search(rf'data-key="{key}">(?:<strong>)?(\d+)', row)
    assert found, (table, row_attr, key, row)
    return int(found.group(1))


def test_dashboard_shows_the_stats_json_figures(console: Console, tmp_path: Path) -> None:
    _seed(console, tmp_path)
    stats = console.cli("stats", "--json").json()
    client, _ = console.signed_in("marketing")
    page = client.get("/admin")
    assert page.status_code == 200
    html = page.text
    for key in ("sent", "delivered", "unique_opens", "unique_clicks", "spam_reports"):
        shown = re.search(rf'data-total="{key}">(\d+)<', html)
        assert shown and int(shown.group(1)) == stats["totals"][key], key
    # Cat lives in New York: 10:00 UTC is before her send window, so three emails went.
    assert stats["totals"]["sent"] == 3 and stats["totals"]["spam_reports"] == 1
    week = 'data-week="2026-11-23"'
    assert _cell(html, "table-weekly", week, "sent") == 3
    assert _cell(html, "table-weekly", week, "delivered") == 3
    assert _cell(html, "table-weekly", week, "unique_opens") == 1
    assert _cell(html, "table-trouble", week, "spam_reports") == 1
    camp = stats["campaigns"][0]
    step = next(s for s in camp["steps"] if s["sent"])
    assert _cell(html, "table-steps", f'data-step="{step["step"]}"', "sent") == step["sent"]
    # each chart is an SVG whose points carry the same numbers
    assert re.search(r'<svg id="chart-weekly"[^>]*role="img"', html)
    assert 'data-series="Sent" data-label="23 Nov" data-value="3"' in html
    assert 'data-series="Complaints" data-label="23 Nov" data-value="1"' in html
    # list health: the rates against the limits the service enforces
    assert 'id="list-health"' in html and "alert 0.1%, pause 0.3%" in html
    assert 'id="delivery"' in html and "outbox" in html


def test_complaint_pause_resume_is_ops_only(console: Console, tmp_path: Path) -> None:
    _seed(console, tmp_path)
    from engagement import complaints

    with time_machine.travel(MONDAY + timedelta(hours=2), tick=False):
        # One spam report in three emails: over the limit once the volume floor is lowered.
        with console.ctx.db.begin() as conn:
            complaints.evaluate(conn, MONDAY + timedelta(hours=2), min_volume=1)
        assert console.cli("health", "status", "--json").json()["campaigns_paused"] is True
        client, csrf = console.signed_in("marketing")
        assert "Only ops can resume it" in client.get("/admin").text
        assert client.post("/admin/health/resume", data={"csrf_token": csrf}).status_code == 403
        ops, ops_csrf = console.signed_in("ops")
        assert ops.post("/admin/health/resume", data={"csrf_token": ops_csrf}).status_code == 303
    assert console.cli("health", "status", "--json").json()["campaigns_paused"] is False
    assert _audit(console, "list.resume") == [(STAFF["ops"], "campaign-email")]


def test_outbox_list_sandboxed_message_and_raw_mime(console: Console, tmp_path: Path) -> None:
    _seed(console, tmp_path)
    client, _ = console.signed_in("marketing")
    listing = client.get("/admin/outbox")
    assert listing.status_code == 200 and "ann@example.com" in listing.text
    first = re.search(r'href="/admin/outbox/(\d+)"', listing.text)
    assert first
    message = client.get(f"/admin/outbox/{first.group(1)}")
    assert message.status_code == 200
    frame = re.search(r"<iframe[^>]*>", message.text)
    assert frame and 'sandbox=""' in frame.group(0) and "srcdoc=" in frame.group(0)
    assert "allow-scripts" not in message.text
    assert "List-Unsubscribe:" in message.text and "MIME-Version" in message.text
    assert client.get("/admin/outbox/999999").status_code == 404


@sqlite_only("a page's words, from settings")
def test_effective_settings_hide_secrets(console: Console) -> None:
    from app.console_services import effective_settings
    from app.context import AppContext
    from app.settings import load_settings

    console.cli.env("CLINICMAIL_SECRET_KEY", "a-very-secret-signing-key-of-32-characters-or-more")
    console.cli.env("CLINICMAIL_TRANSPORT", "smtp")
    console.cli.env("CLINICMAIL_SMTP_URL", "smtp://user:hunter2hunter2@mail.example:25")
    ctx = AppContext.from_settings(load_settings())
    try:
        shown = dict(effective_settings(ctx))
    finally:
        ctx.close()
    text = json.dumps(shown)
    assert "a-very-secret-signing-key" not in text and "hunter2" not in text
    assert shown["CLINICMAIL_SECRET_KEY"] == "(set, hidden)"
    assert shown["CLINICMAIL_SMTP_URL"] == "(set, hidden)"
    assert shown["CLINICMAIL_TRANSPORT"] == "smtp"


@sqlite_only("a role check on pages")
def test_ops_pages_are_for_ops_only(console: Console) -> None:
    marketing, csrf = console.signed_in("marketing")
    for path in ("/admin/ops", "/admin/ops/audit", "/admin/ops/settings", "/admin/ops/transport"):
        assert marketing.get(path).status_code == 403, path
    assert 'href="/admin/ops"' not in marketing.get("/admin").text
    refused = marketing.post(
        "/admin/ops/accounts",
        data={"email": "x@clinic.example", "role": "ops", "password": "p" * 20, "csrf_token": csrf},
    )
    assert refused.status_code == 403

    ops, ops_csrf = console.signed_in("ops")
    assert ops.get("/admin/ops").status_code == 200
    added = ops.post(
        "/admin/ops/accounts",
        data={
            "email": "new@clinic.example",
            "role": "marketing",
            "password": "a long enough password",
            "csrf_token": ops_csrf,
        },
    )
    assert added.status_code == 303
    weak = ops.post(
        "/admin/ops/accounts",
        data={"email": "w@clinic.example", "role": "ops", "password": "x", "csrf_token": ops_csrf},
    )
    assert weak.status_code == 422 and "at least 12" in weak.text
    listed = console.cli("users", "list").out
    assert re.search(r"new@clinic\.example\s+marketing\s+active", listed)
    page = ops.get("/admin/ops").text
    new_id = re.search(
        r'data-email="new@clinic.example">.*?/admin/ops/accounts/(\d+)/disable', page, re.S
    )
    assert new_id
    assert (
        ops.post(
            f"/admin/ops/accounts/{new_id.group(1)}/disable", data={"csrf_token": ops_csrf}
        ).status_code
        == 303
    )
    assert re.search(
        r"new@clinic\.example\s+marketing\s+disabled", console.cli("users", "list").out
    )
    reset = ops.post(
        f"/admin/ops/accounts/{new_id.group(1)}/reset",
        data={"password": "another long password", "csrf_token": ops_csrf},
    )
    assert reset.status_code == 303
    assert re.search(r"new@clinic\.example\s+marketing\s+active", console.cli("users", "list").out)

    audit_page = ops.get("/admin/ops/audit", params={"action": "staff."})
    assert audit_page.status_code == 200
    for action in ("staff.add", "staff.disable", "staff.reset_password"):
        assert action in audit_page.text
    only_cli = ops.get("/admin/ops/audit", params={"actor": "cli"}).text
    assert "staff.disable" not in only_cli and "staff.add" in only_cli

    settings = ops.get("/admin/ops/settings").text
    assert "CLINICMAIL_TRANSPORT" in settings and "CLINICMAIL_SECRET_KEY" in settings

    sent = ops.post(
        "/admin/ops/test-email", data={"to": "otto@clinic.example", "csrf_token": ops_csrf}
    )
    assert sent.status_code == 200 and "accepted by the outbox transport" in sent.text
    listing = ops.get("/admin/outbox").text
    assert "test email from the console" in listing
    bad = ops.post("/admin/ops/test-email", data={"to": "nope", "csrf_token": ops_csrf})
    assert bad.status_code == 422
    # a test email is never a campaign send
    assert console.cli("stats", "--json").json()["totals"]["sent"] == 0


def test_arm_and_leg_symptoms_flag_the_person_for_review(console: Console, tmp_path: Path) -> None:
    """Arm (or neck) and leg symptoms together: a flag on the person page, in the people list
    (with a filter) and a count on the dashboard; it goes when the combination goes."""
    from tests.support.cli import write_csv

    write_csv(
        tmp_path / "p.csv",
        [
            "eve@example.com,Eve,arm_symptoms;sciatica,Europe/London,yes,,",
            "fin@example.com,Fin,neck;desk_posture,Europe/London,yes,,",
        ],
    )
    assert console.cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    eve, fin = _public_id(console, "eve@example.com"), _public_id(console, "fin@example.com")
    client, csrf = console.signed_in("marketing")

    home = client.get("/admin")
    assert home.status_code == 200
    notice = re.search(r'<p[^>]*id="to-review".*?</p>', home.text, re.S)
    assert notice and "1 person to review" in notice.group(0), home.text
    listed = client.get("/admin/subscribers?review=1&status=confirmed")
    assert "eve@example.com" in listed.text and "fin@example.com" not in listed.text
    assert "review: arm and leg" in listed.text and "1 person found" in listed.text
    everyone = client.get("/admin/subscribers")
    assert "fin@example.com" in everyone.text and everyone.text.count("review: arm and leg") == 1

    assert 'id="review-flag"' in client.get(f"/admin/subscribers/{eve}").text
    assert 'id="review-flag"' not in client.get(f"/admin/subscribers/{fin}").text
    # staff take the leg symptoms off (or the person does, in the preference centre): no flag
    changed = client.post(
        f"/admin/subscribers/{eve}/symptoms",
        data={"symptoms": ["arm_symptoms"], "csrf_token": csrf},
    )
    assert changed.status_code == 303
    assert 'id="review-flag"' not in client.get(f"/admin/subscribers/{eve}").text
    assert 'id="to-review"' not in client.get("/admin").text
    # and a change that makes the combination raises it
    client.post(
        f"/admin/subscribers/{fin}/symptoms",
        data={"symptoms": ["neck", "sciatica"], "csrf_token": csrf},
    )
    assert 'id="review-flag"' in client.get(f"/admin/subscribers/{fin}").text


def test_people_pages_by_cursor_keeping_the_filters(console: Console, tmp_path: Path) -> None:
    """Every person once, newest first, across pages; the next page's address keeps the filter
    and names where to start by a public id, never an address."""
    from tests.support.cli import write_csv

    count = 120
    write_csv(
        tmp_path / "many.csv",
        [f"m{i:03d}@example.com,M{i},lower_back,Europe/London,yes,," for i in range(count)],
    )
    assert console.cli("subscribers", "import", str(tmp_path / "many.csv")).code == 0
    client, _ = console.signed_in("marketing")
    url, seen, pages = "/admin/subscribers?status=confirmed", [], 0
    while url:
        listed = client.get(url)
        assert listed.status_code == 200
        seen += re.findall(r">(m\d{3}@example\.com)</a>", listed.text)
        nxt = re.search(r'id="next-page" href="([^"]+)"|href="([^"]+)" id="next-page"', listed.text)
        url = (nxt.group(1) or nxt.group(2)).replace("&amp;", "&") if nxt else ""
        if url:
            assert "status=confirmed" in url
            assert re.search(r"after=[0-9a-f]{32}", url) and "@" not in url
        pages += 1
    assert pages == 3
    assert seen == [f"m{i:03d}@example.com" for i in reversed(range(count))]


def test_outbox_pages_by_cursor(console: Console) -> None:
    """Every stored message once, newest first, however many there are."""
    from sqlalchemy import insert

    from console.outbox import LIST_LIMIT
    from transports.tables import outbox

    count = LIST_LIMIT * 2 + 7
    with console.ctx.db.begin() as conn:
        conn.execute(
            insert(outbox),
            [
                {
                    "send_id": f"s{i:031d}",
                    "subscriber_id": None,
                    "recipient": f"o{i:03d}@example.com",
                    "subject": f"Subject {i}",
                    "message": b"Subject: x\r\n\r\nbody",
                    "created_at": MONDAY,
                }
                for i in range(count)
            ],
        )
    client, _ = console.signed_in("marketing")
    url, seen = "/admin/outbox", []
    while url:
        listed = client.get(url)
        assert listed.status_code == 200
        seen += re.findall(r"<td>(o\d{3}@example\.com)</td>", listed.text)
        found = re.search(r'href="(/admin/outbox\?before=\d+)" id="next-page"', listed.text)
        url = found.group(1) if found else ""
    assert seen == [f"o{i:03d}@example.com" for i in reversed(range(count))]
