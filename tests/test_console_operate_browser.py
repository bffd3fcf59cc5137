"""Console part 2 in a real browser (Debian's chromium driven by Playwright) against a real
`clinicmail serve`, on a list of a few hundred people with three weeks of email and events:
the dashboard's charts and tables show the figures of `clinicmail stats --json`; staff find a
person, open their timeline, export and (ops) erase them; marketing composes a newsletter,
a clinician approves it, marketing schedules and cancels it; marketing gets 403 from ops pages.

Screenshots (at 1280 and 768 px) go to artifacts/screenshots/ when CLINICMAIL_TEST_SCREENSHOTS=1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.ledger import sends
from engagement.checkins import answer, find_send
from engagement.ingest import parse_sendgrid, store
from engagement.process import apply_pending
from storage import Database
from subscribers.tables import subscribers
from tests.support.browser import Site, shot, sign_in, unlabelled

PEOPLE = 300
WEEKS = [datetime(2026, 12, 7, 10, 0, tzinfo=UTC) + timedelta(weeks=w) for w in range(3)]
SYMPTOMS = ["lower_back;sciatica", "neck;desk_posture", "lower_back", "mid_back;chronic_pain"]
ZONES = ["Europe/London", "Europe/Berlin", "America/New_York"]


def _rows() -> list[str]:
    rows = []
    for i in range(PEOPLE):
        symptoms = SYMPTOMS[i % len(SYMPTOMS)]
        if i % 100 == 99:
            symptoms += ";red_flag_leg_weakness"
        name = f"Person{i}" if i % 4 else ""
        rows.append(f"p{i:03d}@example.com,{name},{symptoms},{ZONES[i % 3]},yes,,")
    return rows


def _events_for(db: Database, at: datetime) -> None:
    """Delivered for every campaign email sent at ``at``; human opens, clicks, check-ins,
    unsubscribes and a spam report for a deterministic share."""
    with db.begin() as conn:
        sent = conn.execute(
            select(sends.c.send_id, subscribers.c.email, subscribers.c.id)
            .join(subscribers, subscribers.c.id == sends.c.subscriber_id)
            .where(sends.c.kind == "campaign", sends.c.status == "sent", sends.c.sent_at == at)
            .order_by(sends.c.id)
        ).all()
    later = at + timedelta(hours=2)
    ts = int(later.timestamp())
    events: list[dict[str, Any]] = []
    for n, (send_id, email, sid) in enumerate(sent):
        base = {
            "email": email,
            "timestamp": ts,
            "sg_message_id": f"m-{send_id}",
            "send_id": send_id,
        }
        # delivered at once; people open and click later (a click within seconds of the
        # delivery is a link scanner's and is not counted)
        delivered = int((at + timedelta(minutes=1)).timestamp())
        events.append(
            {**base, "timestamp": delivered, "event": "delivered", "sg_event_id": f"d-{send_id}"}
        )
        if (n + sid) % 3 == 0:
            events.append({**base, "event": "open", "sg_event_id": f"o-{send_id}"})
        if (n + sid) % 5 == 0:
            events.append(
                {
                    **base,
                    "event": "click",
                    "sg_event_id": f"c-{send_id}",
                    "url": "https://clinic.example/",
                }
            )
        if (n + sid) % 41 == 0:
            events.append({**base, "event": "unsubscribe", "sg_event_id": f"u-{send_id}"})
    if sent:
        send_id, email, _ = sent[len(sent) // 2]
        events.append(
            {
                "email": email,
                "timestamp": ts,
                "sg_message_id": f"m-{send_id}",
                "send_id": send_id,
                "event": "spamreport",
                "sg_event_id": f"s-{send_id}",
            }
        )
    with db.begin() as conn:
        store(conn, parse_sendgrid(json.dumps(events).encode()), later)
    apply_pending(db.begin, later)
    with db.begin() as conn:
        for n, (send_id, _email, sid) in enumerate(sent):
            if (n + sid) % 4 == 0:
                found = find_send(conn, send_id)
                assert found is not None
                answer(conn, found, ("better", "same", "worse")[n % 3], later)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("console2")
    s = Site(tmp_path)
    s.env["CLINICMAIL_STAFF_EMAIL"] = "frontdesk@clinic.example"
    s.init(staff=True)
    csv = tmp_path / "people.csv"
    csv.write_text(
        "email,first_name,symptoms,timezone,consent,consent_at,source\n"
        + "\n".join(_rows())
        + "\n",
        encoding="utf-8",
    )
    s.cli("subscribers", "import", str(csv))
    db = Database(s.db_url)
    try:
        for at in WEEKS:
            s.cli("tick", "--now", at.isoformat())
            _events_for(db, at)
    finally:
        db.dispose()
    with s.serving():
        yield s


def _fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_dashboard_charts_show_the_stats_figures(browser: Any, site: Site) -> None:
    stats = json.loads(site.cli("stats", "--json"))
    totals = stats["totals"]
    assert totals["sent"] > 500 and totals["unique_opens"] and totals["spam_reports"] == 3
    context, page = sign_in(browser, site, "marketing", start="/admin", accept_downloads=True)
    for key in (
        "sent",
        "delivered",
        "unique_opens",
        "unique_clicks",
        "unsubscribes",
        "spam_reports",
    ):
        assert int(page.locator(f"[data-total={key}]").inner_text()) == totals[key], key
    # three weeks in every weekly table, each chart drawn from the same numbers
    rows = page.locator("#table-weekly tbody tr")
    assert rows.count() == 3
    weekly_sum = {k: 0 for k in ("sent", "delivered", "unique_opens", "unique_clicks")}
    series = {
        "sent": "Sent",
        "delivered": "Delivered",
        "unique_opens": "Human opens",
        "unique_clicks": "Clicks",
    }
    for i in range(3):
        row = rows.nth(i)
        label = row.locator("th").inner_text()
        for key, name in series.items():
            value = int(row.locator(f"td[data-key={key}]").inner_text())
            weekly_sum[key] += value
            point = page.locator(
                f'#chart-weekly circle[data-series="{name}"][data-label="{label}"]'
            )
            assert point.get_attribute("data-value") == str(value)
    assert weekly_sum == {k: totals[k] for k in weekly_sum}
    checkins = {k: 0 for k in ("checkin_better", "checkin_same", "checkin_worse")}
    for cell in page.locator("#table-checkins td[data-key]").all():
        checkins[cell.get_attribute("data-key")] += int(cell.inner_text())
    assert checkins == {k: totals[k] for k in checkins} and sum(checkins.values()) > 0
    assert page.locator("#chart-checkins rect[data-series=Worse]").count() == 3
    assert page.locator("#chart-trouble rect[data-series=Complaints]").count() == 3
    step = next(s for s in stats["campaigns"][0]["steps"] if s["sent"])
    cell = page.locator(
        f'#table-steps tr[data-step="{step["step"]}"]:not([data-variant]) td[data-key=sent]'
    )
    assert int(cell.inner_text()) == step["sent"]
    expect(page.locator("svg#chart-weekly")).to_be_visible()
    assert _fits(page)
    shot(page, "c2-01-dashboard-1280")
    # keyboard: the first Tab reaches the skip link, which moves focus to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    context.close()
    tablet, tpage = sign_in(browser, site, "ops", width=768, start="/admin", accept_downloads=True)
    expect(tpage.locator("svg#chart-weekly")).to_be_visible()
    assert _fits(tpage)
    shot(tpage, "c2-02-dashboard-768")
    tablet.close()


def test_find_a_person_timeline_export_and_erase(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "marketing", start="/admin", accept_downloads=True)
    page.get_by_role("link", name="People").click()
    page.wait_for_url(re.compile(r"/admin/subscribers"))
    assert unlabelled(page) == 0
    page.fill("#q", "p012@")  # live results while typing (htmx)
    page.wait_for_function(  # a function: the CSP forbids eval of a string
        "() => document.querySelector('#found-count')?.textContent.startsWith('1 person')"
    )
    shot(page, "c2-03-people-search")
    page.get_by_role("link", name="p012@example.com").click()
    page.wait_for_selector("#timeline")
    timeline = page.locator("#timeline").inner_text()
    assert (
        "consent" in timeline and "delivered" in timeline and "email_education: given" in timeline
    )
    expect(page.get_by_text("What comes next")).to_be_visible()
    assert unlabelled(page) == 0
    shot(page, "c2-04-person-1280")
    url = page.url
    with page.expect_download() as info:
        page.get_by_role("link", name="Export (JSON)").click()
    downloaded = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    from_cli = json.loads(site.cli("subscribers", "export", "p012@example.com"))
    # The same document, but the CLI's own export is audited too, so it has one more entry.
    assert from_cli.pop("audit_log")[:-1] == downloaded.pop("audit_log")
    assert downloaded == from_cli
    assert page.get_by_role("link", name="Erase…").count() == 0  # marketing cannot erase
    context.close()

    ops, opage = sign_in(browser, site, "ops", width=768, start="/admin", accept_downloads=True)
    opage.goto(url)
    assert _fits(opage)
    shot(opage, "c2-05-person-768")
    opage.get_by_role("link", name="Erase…").click()
    opage.fill("#confirm_email", "someone-else@example.com")
    opage.get_by_role("button", name="Erase for good").click()
    expect(opage.locator("#erase-error")).to_be_visible()
    opage.fill("#confirm_email", "p012@example.com")
    opage.get_by_role("button", name="Erase for good").click()
    opage.wait_for_url(re.compile(r"erased=1"))
    expect(opage.get_by_text("The person was erased")).to_be_visible()
    shot(opage, "c2-06-erased")
    assert opage.goto(url).status == 404
    ops.close()
    gone = site.run("subscribers", "export", "p012@example.com")
    assert gone.code == 1


def test_compose_review_schedule_and_cancel_a_newsletter(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "marketing", start="/admin", accept_downloads=True)
    page.get_by_role("link", name="Newsletters").click()
    page.get_by_role("link", name="Write a newsletter").click()
    page.fill("#slug", "january-hours")
    page.fill("#subject", "New year opening hours")
    page.fill("#preheader", "We reopen on 4 January")
    page.fill("#body", "Hello {{ first_name }},\n\nWe reopen on **4 January**.\n")
    page.fill("#local_at", "2027-01-05T10:00")
    page.locator("summary", has_text="Symptoms (any of)").click()
    page.locator("input[name=seg_codes][value=neck]").check()
    dry = json.loads(
        site.cli(
            "campaigns",
            "broadcast",
            str(_file(site)),
            "--at",
            "2027-01-05 10:00",
            "--segment",
            "{all: [{has_any: [neck]}]}",
            "--id",
            "january-hours",
            "--dry-run",
            "--json",
        )
    )
    assert dry["recipients"] > 0
    # the live count and the per-zone plan settle on the dry run's figures (htmx, as you choose)
    page.wait_for_function(
        "n => document.querySelector('#audience-count')?.textContent === String(n)"
        " && document.querySelector('#zone-plan') !== null",
        arg=dry["recipients"],
    )
    count = int(page.locator("#audience-count").inner_text())
    zones = page.locator("#zone-plan tbody tr")
    assert zones.count() == len(dry["zones"]) == 3
    expect(
        page.frame_locator("iframe.preview-frame").get_by_text("We reopen on 4 January.")
    ).to_be_visible()
    assert unlabelled(page) == 0
    shot(page, "c2-07-newsletter-compose-1280")
    page.get_by_role("button", name="Create draft").click()
    page.wait_for_url(re.compile(r"/admin/newsletters/[0-9a-f]{32}$"))
    newsletter_url = page.url
    page.get_by_role("button", name=re.compile("Ask a clinician")).click()
    page.wait_for_selector("#newsletter-state")
    assert page.locator("#approve").count() == 0
    context.close()

    clinician, cpage = sign_in(browser, site, "clinician", start="/admin", accept_downloads=True)
    cpage.goto(newsletter_url)
    cpage.fill("#note", "Fine to send")
    cpage.get_by_role("button", name="Approve").click()
    cpage.wait_for_selector("#schedule")
    clinician.close()

    context, page = sign_in(
        browser, site, "marketing", width=768, start="/admin", accept_downloads=True
    )
    page.goto(newsletter_url)
    page.get_by_role("button", name=re.compile("Schedule for")).click()
    expect(page.locator("#confirm-message")).to_contain_text(f"It goes to {count:,} ")
    page.locator("#confirm").click()
    page.wait_for_function(  # a function: the CSP forbids eval of a string
        "() => document.querySelector('#newsletter-state').textContent === 'scheduled'"
    )
    assert int(page.locator("#progress-audience").inner_text()) == count
    assert _fits(page)
    shot(page, "c2-08-newsletter-scheduled-768")
    page.get_by_role("button", name="Cancel newsletter…").click()
    expect(page.locator("#confirm-message")).to_contain_text("still waiting will not be sent")
    page.locator("#confirm").click()
    page.wait_for_function(  # a function: the CSP forbids eval of a string
        "() => document.querySelector('#newsletter-state').textContent === 'cancelled'"
    )
    shot(page, "c2-09-newsletter-cancelled")
    listed = json.loads(site.cli("campaigns", "broadcasts", "--json"))
    assert [(b["id"], b["state"]) for b in listed] == [("january-hours", "cancelled")]
    context.close()


def test_marketing_cannot_reach_ops_pages(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "marketing", start="/admin", accept_downloads=True)
    assert page.locator("nav a[href='/admin/ops']").count() == 0
    for path in ("/admin/ops", "/admin/ops/audit", "/admin/ops/settings", "/admin/ops/transport"):
        response = page.goto(f"{site.base}{path}")
        assert response.status == 403, path
    shot(page, "c2-10-ops-forbidden")
    context.close()
    ops, opage = sign_in(browser, site, "ops", start="/admin", accept_downloads=True)
    opage.get_by_role("link", name="Ops").click()
    expect(opage.locator("#accounts")).to_be_visible()
    opage.get_by_role("link", name="Audit log").click()
    opage.fill("#action", "subscriber.")
    opage.get_by_role("button", name="Filter").click()
    assert "subscriber.view" in opage.locator("#audit").inner_text()
    shot(opage, "c2-11-audit-log")
    opage.get_by_role("link", name="Transport").click()
    opage.get_by_role("button", name="Send test email").click()
    assert "accepted by the outbox transport" in opage.locator("#test-result").inner_text()
    opage.get_by_role("link", name="Outbox").click()
    opage.get_by_role("link", name=re.compile("test email from the console")).first.click()
    frame = opage.locator("iframe.mail")
    assert frame.get_attribute("sandbox") == ""
    assert "MIME-Version" in opage.locator("#raw-mime").inner_text()
    shot(opage, "c2-12-outbox-message")
    ops.close()


def _file(site: Site) -> Path:
    from campaigns.newsletters import markdown

    path = site.tmp_path / "january-hours.md"
    path.write_text(
        markdown(
            "New year opening hours",
            "We reopen on 4 January",
            "Hello {{ first_name }},\n\nWe reopen on **4 January**.\n",
        ),
        encoding="utf-8",
    )
    return path
