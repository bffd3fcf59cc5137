"""Own tracking, the template half: outbound links become per-recipient tokens once per
(step, variant), our own links and mailto: stay, the pixel is added; the check-in block."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.loader import load_catalog
from campaigns.rendering import render_variant
from subscribers.activity import CHECKIN_ANSWERS
from templates import Content, Renderer, fill
from templates.checkin import ANSWERS, QUESTION
from templates.tracking import track
from tests.support.clinic import CLINIC as RIVERSIDE

# A booking link with a query string of its own, which tracking must keep intact.
CLINIC = replace(RIVERSIDE, booking_url="https://riverside.example/book?src=email&x=1")
NHS = "https://www.nhs.uk/conditions/back-pain/?a=1&b=2"
GUIDE = "https://riverside.example/guide"
BODY = f"""Hi {{{{ first_name }}}},

Read [the NHS page]({NHS}) and [our guide]({GUIDE}), then [the NHS page again]({NHS}).

[Book]({{{{ clinic.booking_url }}}}) or [write to us](mailto:care@riverside.example).
A longer one: [guide, part two]({GUIDE}/two).

![A stretch](https://riverside.example/stretch.png)
"""
VALUES = {
    "first_name": "Sam",
    "unsubscribe_url": "https://mail.riverside.example/unsubscribe/U",
    "preferences_url": "https://mail.riverside.example/preferences/P",
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(CLINIC)


def test_outbound_links_become_tokens_and_the_pixel_is_added(renderer: Renderer) -> None:
    plain = renderer.render(
        Content(subject="Hello", preheader="", body=BODY), reason="r", list_name="t"
    )
    tracked = track(plain)
    # Each distinct http(s) URL once, in order of first appearance, exactly as written.
    assert tracked.links == (NHS, GUIDE, CLINIC.booking_url, f"{GUIDE}/two")
    r = tracked.rendered
    assert {"link_0", "link_1", "link_2", "link_3", "open_url"} <= r.fields
    hrefs = re.findall(r'<a\b[^>]*\shref="([^"]*)"', r.html)
    assert hrefs.count("@@link_0@@") == 2  # the repeated NHS link shares its position
    assert "mailto:care@riverside.example" in hrefs  # mailto: is never rewritten
    assert "@@unsubscribe_url@@" in hrefs and "@@preferences_url@@" in hrefs  # ours stay ours
    assert not [h for h in hrefs if h.startswith("http")]
    assert '<img src="https://riverside.example/stretch.png"' in r.html  # images load directly
    assert re.search(r'<img src="@@open_url@@" width="1" height="1" alt=""', r.html)
    assert r.html.index("@@open_url@@") < r.html.index("</body>")
    # The text part: every target rewritten, never a label; the longer URL is not cut short.
    assert "(@@link_0__t@@)" in r.text and "(@@link_3__t@@)" in r.text
    assert NHS not in r.text and GUIDE not in r.text and "riverside.example/book" not in r.text
    # Filling a recipient's values gives real links in both parts.
    links = {f"link_{i}": f"https://mail.riverside.example/r/S-{i}/SIG" for i in range(4)}
    _, page, text = fill(r, {**VALUES, **links, "open_url": "https://m.example/o/S/SIG.gif"})
    assert 'href="https://mail.riverside.example/r/S-0/SIG"' in page
    assert "(https://mail.riverside.example/r/S-3/SIG)" in text
    assert 'src="https://m.example/o/S/SIG.gif"' in page
    assert "@@" not in page + text


def test_without_tracking_the_original_links_stay(renderer: Renderer) -> None:
    r = renderer.render(
        Content(subject="Hello", preheader="", body=BODY), reason="r", list_name="t"
    )
    _, page, text = fill(r, VALUES)
    assert f'href="{NHS.replace("&", "&amp;")}"' in page
    assert f"({NHS})" in text
    assert "/r/" not in page and "open_url" not in page and 'width="1"' not in page


def test_an_email_without_links_still_gets_the_pixel(renderer: Renderer) -> None:
    r = renderer.render(Content("Hi", "", "Just words.\n"), reason="r", list_name="t")
    tracked = track(r)
    assert tracked.links == ()
    assert tracked.rendered.fields >= {"open_url"}
    assert track(r, pixel=False).rendered.html == r.html


def test_the_checkin_block_in_both_parts(renderer: Renderer) -> None:
    assert ANSWERS == CHECKIN_ANSWERS  # the values segment rules read
    r = renderer.render(
        Content(subject="Hi", preheader="", body="Words.\n"),
        reason="r",
        list_name="t",
        checkin=True,
    )
    assert "checkin_url" in r.fields
    url = "https://mail.riverside.example/checkin/SEND.SIG"
    _, page, text = fill(r, {**VALUES, "checkin_url": url})
    assert QUESTION in page and QUESTION in text
    for answer, label in (("better", "Better"), ("same", "About the same"), ("worse", "Worse")):
        assert re.search(rf'<a href="{re.escape(url)}/{answer}"[^>]*>{label}</a>', page)
        assert f"- {label}: {url}/{answer}" in text
    assert 'role="group" aria-labelledby="checkin-question"' in page
    # The block sits inside the email's content, before the footer, in both parts.
    assert page.index(QUESTION) < page.index("You are receiving this because")
    assert text.index(QUESTION) < text.index("You are receiving this because")
    # Check-in links are ours: tracking leaves them alone.
    assert track(r).links == ()
    plain = renderer.render(Content("Hi", "", "Words.\n"), reason="r", list_name="t")
    assert QUESTION not in plain.html and "checkin_url" not in plain.fields


def test_library_steps_4_and_8_ask_for_a_check_in(renderer: Renderer) -> None:
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    campaign = catalog.get("spasm-education")
    assert campaign is not None
    asking = set()
    for step in campaign.steps:
        for variant in (step.default, *step.variants):
            rendered = render_variant(renderer, campaign, variant)
            if "checkin_url" in rendered.fields:
                asking.add(step.number)
                _, page, text = fill(rendered, {**VALUES, "checkin_url": "https://x/c/T"})
                assert "https://x/c/T/worse" in page and "https://x/c/T/worse" in text
    assert asking == {4, 8}


def test_token_names_may_carry_digits(renderer: Renderer) -> None:
    r = renderer.render(Content("Hi", "", "[a](https://a.example/)\n"), reason="r", list_name="t")
    tracked = track(r).rendered
    _, page, text = fill(tracked, {"link_0": "https://ok.example/r/1", "open_url": "x"})
    assert "https://ok.example/r/1" in page and "https://ok.example/r/1" in text
