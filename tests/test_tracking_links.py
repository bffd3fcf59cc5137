"""Own click and open tracking for the outbox and SMTP transports, end to end: the email as
delivered carries signed /r/ links and a pixel; a click redirects to exactly the stored URL and
shows in `clinicmail stats` and as a `clicked:` rule fact; anything forged is a 404 and records
nothing; machines are recorded but never counted."""

from __future__ import annotations

import re
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.settings import load_settings
from engagement.tables import tracked_links
from engagement.tracking import store_links
from storage import utcnow
from subscribers.activity import NOTHING, activity_of
from subscribers.segments import Facts, compile_rule, parse_rule
from subscribers.tables import subscribers
from tests.support.app import app_for, context_for
from tests.support.approval import approve_library
from tests.support.backends import sqlite_only
from tests.support.cli import CLI
from tests.support.outbox import messages
from tests.support.sendgrid import FakeSendGrid
from tests.support.smtp import Sink, use_smtp
from tests.support.tracking import (
    BASE,
    BOOKING,
    EXERCISES,
    MONDAY,
    NHS,
    PEOPLE,
    event_count,
    events,
    part,
    paths,
    send_of,
    set_up,
)

AN_HOUR_LATER = "2026-11-23T11:00:00Z"
SCANNER = "Mozilla/5.0 (compatible; Barracuda Sentinel link scanner)"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _stats(cli: CLI) -> dict[str, Any]:
    run = cli("stats", "--json")
    assert run.code == 0, run.err
    (campaign,) = [c for c in run.json()["campaigns"] if c["id"] == "care-notes"]
    first = campaign["steps"][0]
    assert first["step"] == "first"
    return dict(first)


def _who_matches(cli: CLI, rule: dict[str, str]) -> tuple[set[str], set[str]]:
    """The people a rule selects, in SQL and in Python (they must agree)."""
    from app.context import AppContext

    parsed = parse_rule(rule)
    ctx = AppContext.from_settings(load_settings())
    try:
        with ctx.db.begin() as conn:
            people = {r.id: r.email_key for r in conn.execute(select(subscribers))}
            in_sql = {
                people[i]
                for i in conn.execute(
                    select(subscribers.c.id).where(compile_rule(parsed))
                ).scalars()
            }
            facts = activity_of(conn, people)
        in_python = {
            key
            for i, key in people.items()
            if parsed.matches(Facts(activity=facts.get(i, NOTHING)))
        }
        return in_sql, in_python
    finally:
        ctx.close()


def test_outbox_links_redirect_to_exactly_the_stored_url_and_count(
    cli: CLI, tmp_path: Path
) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        (msg,) = messages(ctx, "ann@example.com")
        html, text = part(msg, "html"), part(msg, "plain")
        # Outbound links are ours now, in both parts; no original URL is left to click.
        for url in (NHS, EXERCISES, BOOKING):
            assert url not in text and url.replace("&", "&amp;") not in html
        clicks = _unique(paths(text, "r"))
        assert clicks == _unique(re.findall(rf'href="{re.escape(BASE)}(/r/[^"]+)"', html))
        assert len(clicks) == 3  # the NHS guide is linked twice and tracked once
        assert 'href="mailto:care@clinic.example"' in html  # mailto: stays as written
        assert '<img src="https://clinic.example/img/stretch.png"' in html
        (pixel,) = paths(html, "o")
        assert pixel.endswith(".gif")
        assert event_count(ctx) == 0  # rendering and sending record nothing
        with ctx.db.begin() as conn:  # stored once for the (step, variant), not per recipient
            stored = conn.execute(
                select(tracked_links.c.url).order_by(tracked_links.c.position)
            ).scalars()
            assert list(stored) == [NHS, EXERCISES, BOOKING]

        for path, url in zip(clicks, (NHS, EXERCISES, BOOKING), strict=True):
            reply = client.get(path, follow_redirects=False, headers={"User-Agent": "Firefox"})
            assert reply.status_code == 302
            assert reply.headers["location"] == url
            assert "no-store" in reply.headers["cache-control"]
            assert reply.headers["referrer-policy"] == "no-referrer"
        recorded = events(ctx)
        assert [(e["provider"], e["kind"], e["machine"]) for e in recorded] == [
            ("clinicmail", "clicked", False)
        ] * 3
        assert {e["send_id"] for e in recorded} == {send_of(ctx, "ann@example.com")}
        assert [e["url"] for e in recorded] == [NHS, EXERCISES, BOOKING]
        assert all(e["email_hash"] for e in recorded)  # so erasure deletes them too

    first = _stats(cli)
    assert (first["sent"], first["clicks"], first["unique_clicks"]) == (2, 3, 1)
    assert cli("tick", "--now", AN_HOUR_LATER, "--json").code == 0
    in_sql, in_python = _who_matches(cli, {"clicked": "care-notes/first"})
    assert in_sql == in_python == {"ann@example.com"}
    assert _who_matches(cli, {"clicked": "care-notes/second"}) == (set(), set())


def test_forged_unsigned_unknown_and_borrowed_links_are_404_and_record_nothing(
    cli: CLI, tmp_path: Path
) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        ann = _unique(paths(part(messages(ctx, "ann@example.com")[0], "plain"), "r"))
        bob = _unique(paths(part(messages(ctx, "bob@example.com")[0], "plain"), "r"))
        _, _, ann_id, ann_sig = ann[0].split("/")
        _, _, bob_id, bob_sig = bob[0].split("/")
        _, _, ann_id_2, _ = ann[1].split("/")
        ann_send, row = ann_id.split("-")
        signer = ctx.tokens
        with ctx.db.begin() as conn:  # a real stored link, but of another step
            (other_row,) = store_links(
                conn, "care-notes", "second", "default", ["https://clinic.example/x"], utcnow()
            )
        # Flip a middle character: the last base64 character may carry only padding bits, so
        # changing it can leave the decoded signature (and so its validity) unchanged.
        mid = len(ann_sig) // 2
        flipped = ann_sig[:mid] + ("A" if ann_sig[mid] != "A" else "B") + ann_sig[mid + 1 :]
        forged = [
            f"/r/{ann_id}/{flipped}",  # tampered signature
            f"/r/{ann_id}/",  # unsigned
            f"/r/{ann_id}",
            f"/r/{ann_id_2}/{ann_sig}",  # a signature for another link
            f"/r/{bob_id}/{ann_sig}",  # another recipient's id with Ann's signature
            f"/r/{ann_send}-{int(row) + 1000}/"
            + signer.signature("click", f"{ann_send}-{int(row) + 1000}"),  # unknown link
            f"/r/{'0' * 32}-{row}/" + signer.signature("click", f"{'0' * 32}-{row}"),  # no send
            f"/r/{ann_send}-{other_row}/"
            + signer.signature("click", f"{ann_send}-{other_row}"),  # not this email's link
            f"/r/{ann_id}/{signer.signature('open', ann_id)}",  # another purpose's signature
            f"/r/ann@example.com-{row}/{ann_sig}",
        ]
        for path in forged:
            reply = client.get(path, follow_redirects=False)
            assert reply.status_code == 404, path
            assert "location" not in reply.headers
        for path in (f"/o/{ann_send}/{flipped}.gif", f"/o/{bob_id.split('-')[0]}/{ann_sig}.gif"):
            assert client.get(path).status_code == 404
        assert event_count(ctx) == 0
        # The genuine links still work afterwards, and a query string cannot steer them.
        evil = client.get(
            f"/r/{bob_id}/{bob_sig}?url=https://evil.example/", follow_redirects=False
        )
        assert (evil.status_code, evil.headers["location"]) == (302, NHS)


def test_open_pixel_counts_one_person_and_machines_are_recorded_but_not_counted(
    cli: CLI, tmp_path: Path
) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        html = part(messages(ctx, "ann@example.com")[0], "html")
        (pixel,) = paths(html, "o")
        clicks = _unique(paths(html, "r"))
        human = client.get(pixel, headers={"User-Agent": "Thunderbird/128.0"})
        assert human.status_code == 200
        assert human.headers["content-type"] == "image/gif"
        assert human.content.startswith(b"GIF89a") and len(human.content) < 100
        assert "no-store" in human.headers["cache-control"]
        assert human.headers["pragma"] == "no-cache"
        client.head(pixel)  # a gateway checking the image
        client.get(pixel, headers={"User-Agent": SCANNER})
        client.get(pixel, headers={"User-Agent": "Mozilla/5.0"})  # Apple's privacy prefetch
        client.head(clicks[0])  # a link checker
        client.get(clicks[1], headers={"User-Agent": SCANNER}, follow_redirects=False)
        recorded = [(e["kind"], e["event"], e["machine"]) for e in events(ctx)]
        assert recorded == [
            ("opened", "open", False),
            ("opened", "open:head", True),
            ("opened", "open:agent", True),
            ("opened", "open:proxy", True),
            ("clicked", "click:head", True),
            ("clicked", "click:agent", True),
        ]
    first = _stats(cli)
    assert (first["opens"], first["unique_opens"]) == (1, 1)
    assert (first["clicks"], first["unique_clicks"]) == (0, 0)
    assert cli("tick", "--now", AN_HOUR_LATER, "--json").code == 0
    assert _who_matches(cli, {"opened": "care-notes/first"})[0] == {"ann@example.com"}
    assert _who_matches(cli, {"clicked": "care-notes"}) == (set(), set())


def test_a_click_within_seconds_of_sending_is_a_scanner(cli: CLI, tmp_path: Path) -> None:
    set_up(cli, tmp_path)
    with app_for(cli) as (client, ctx):
        from campaigns.ledger import sends

        send_id = send_of(ctx, "bob@example.com")
        with ctx.db.begin() as conn:  # as if the email had left a moment ago
            conn.execute(sends.update().where(sends.c.send_id == send_id).values(sent_at=utcnow()))
        link = paths(part(messages(ctx, "bob@example.com")[0], "plain"), "r")[0]
        reply = client.get(link, follow_redirects=False, headers={"User-Agent": "Firefox"})
        assert reply.status_code == 302  # the scanner still gets where it was going
        assert [(e["event"], e["machine"]) for e in events(ctx)] == [("click:early", True)]
    assert cli("tick", "--now", AN_HOUR_LATER, "--json").code == 0
    assert _who_matches(cli, {"clicked": "care-notes"}) == (set(), set())


def test_smtp_delivered_email_carries_links_that_redirect(
    cli: CLI, smtp: tuple[Sink, int], tmp_path: Path
) -> None:
    sink, port = smtp
    use_smtp(cli, port)
    approve_library(cli)  # campaign email goes only once a clinician approved it
    set_up(cli, tmp_path)
    by_rcpt = {rcpts[0]: message_from_bytes(raw) for _, rcpts, raw in sink.messages}
    assert set(by_rcpt) == {"ann@example.com", "bob@example.com"}
    msg = by_rcpt["bob@example.com"]
    text, html = part(msg, "plain"), part(msg, "html")
    clicks = _unique(paths(text, "r"))
    assert len(clicks) == 3 and len(paths(html, "o")) == 1
    with app_for(cli) as (client, ctx):
        reply = client.get(clicks[1], follow_redirects=False, headers={"User-Agent": "Mail"})
        assert (reply.status_code, reply.headers["location"]) == (302, EXERCISES)
        assert client.get(paths(html, "o")[0]).status_code == 200
        assert {e["send_id"] for e in events(ctx)} == {send_of_smtp(msg)}
    first = _stats(cli)
    assert (first["clicks"], first["unique_clicks"], first["unique_opens"]) == (1, 1, 1)
    assert cli("tick", "--now", AN_HOUR_LATER, "--json").code == 0
    assert _who_matches(cli, {"clicked": "care-notes/first"})[0] == {"bob@example.com"}


def send_of_smtp(msg: Any) -> str:
    return str(msg["X-Clinicmail-Send-Id"])


@sqlite_only("what a link holds is decided when the email is rendered")
def test_no_address_name_or_symptom_in_any_link(cli: CLI, tmp_path: Path) -> None:
    set_up(cli, tmp_path)
    with context_for(cli) as ctx:
        for msg in messages(ctx):
            text, html = part(msg, "plain"), part(msg, "html")
            ours = [
                u
                for u in re.findall(rf"{re.escape(BASE)}/[^\s\"<>)\]]+", text + html)
                if not u.startswith((f"{BASE}/unsubscribe/", f"{BASE}/preferences/"))
            ]
            assert ours  # tracked links, the pixel and the check-in links
            for url in ours:
                low = url.lower()
                # Signed tokens are random base64: a three-letter name can turn up inside one by
                # chance, so names and codes are looked for in the readable parts of the URL,
                # and the whole address (which no chance can produce) everywhere.
                readable = [seg for seg in re.split(r"[/?&=.#]", low) if len(seg) < 16]
                for person in PEOPLE:
                    email, name, codes = person.split(",")[:3]
                    assert email.lower() not in low and "example.com" not in low
                    assert not any(name.lower() in seg for seg in readable), url
                    assert not any(c in seg for c in codes.split(";") for seg in readable), url


@sqlite_only("a setting read when the email is rendered")
def test_tracking_off_keeps_the_original_links(cli: CLI, tmp_path: Path) -> None:
    cli.env("CLINICMAIL_TRACKING", "off")
    set_up(cli, tmp_path)
    with context_for(cli) as ctx:
        msg = messages(ctx, "ann@example.com")[0]
        text, html = part(msg, "plain"), part(msg, "html")
        assert f"({NHS})" in text and f'href="{NHS.replace("&", "&amp;")}"' in html
        assert f"({BOOKING})" in text
        assert paths(text + html, "r") == [] and paths(html, "o") == []
        assert len(_unique(paths(text, "checkin"))) == 3  # check-ins are not tracking


@sqlite_only("a setting checked at start-up")
def test_tracking_setting_is_validated(cli: CLI, tmp_path: Path) -> None:
    cli.env("CLINICMAIL_TRACKING", "sometimes")
    run = cli("tick", "--now", MONDAY)
    assert run.code == 1
    assert run.err.strip() == "clinicmail: CLINICMAIL_TRACKING: must be on or off (got 'sometimes')"
    cli.env("CLINICMAIL_TRACKING", " ON ")
    assert load_settings().own_tracking is True
    cli.env("CLINICMAIL_TRANSPORT", "sendgrid")
    cli.env("SENDGRID_API_KEY", "SG.x")
    assert load_settings().own_tracking is False  # SendGrid keeps its own webhook


@sqlite_only("the request body sent to SendGrid")
def test_sendgrid_email_is_not_rewritten_and_click_tracking_stays_off(
    sg_cli: CLI, sendgrid: FakeSendGrid, tmp_path: Path
) -> None:
    set_up(sg_cli, tmp_path)
    (body,) = sendgrid.requests
    assert body["tracking_settings"]["click_tracking"]["enable"] is False
    html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
    assert f'href="{NHS.replace("&", "&amp;")}"' in html and "/r/" not in html
    assert "@@open_url@@" not in html
    # The check-in link still reaches each recipient, as an opaque signed substitution.
    for p in body["personalizations"]:
        url = p["substitutions"]["@@checkin_url@@"]
        assert url.startswith(f"{BASE}/checkin/") and "@" not in url


@pytest.mark.parametrize("agent", ["", "curl/8.5.0", "python-requests/2.32", "Googlebot/2.1"])
def test_scripts_and_bots_are_machines(agent: str) -> None:
    from engagement.tracking import machine_reason

    now = utcnow()
    assert machine_reason("GET", agent, None, now) == "agent"
    assert (
        machine_reason("GET", "Mozilla/5.0 (Macintosh) AppleWebKit Safari/605", None, now) is None
    )


def test_tracking_never_blocks_sending(cli: CLI, tmp_path: Path) -> None:
    set_up(cli, tmp_path, tick=False)
    # The links table is gone (a broken migration, say).
    with context_for(cli) as ctx, ctx.db.begin() as conn:
        tracked_links.drop(conn)
    run = cli("tick", "--now", MONDAY, "--json")
    assert run.code == 0, run.err
    assert (run.json()["sent"], run.json()["failed"]) == (2, 0)
    with context_for(cli) as ctx:
        text = part(messages(ctx, "ann@example.com")[0], "plain")
        assert f"({NHS})" in text and paths(text, "r") == []
        assert len(_unique(paths(text, "checkin"))) == 3
