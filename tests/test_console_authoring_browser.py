"""Content work without a terminal, in a real browser (Debian's chromium driven by Playwright)
against a real `clinicmail serve`: a campaign created from the campaigns page lands in its
first email's editor; a step's delay and audience changed through the settings form show in
the YAML (advanced) view and in the plain-words line; a rule the form cannot show survives a
save from the form; a bad delay is refused beside its field with what was typed kept."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect

from tests.support.browser import Site, open_draft, sign_in


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("authoring")
    s = Site(tmp_path)
    s.init(staff=True)
    with s.serving():
        yield s


def _stored_files(site: Site, campaign_id: str) -> dict[str, str]:
    """The newest version's files, as the database holds them."""
    found = site.rows(
        "SELECT files FROM campaign_versions WHERE campaign_id = :c ORDER BY number DESC LIMIT 1",
        c=campaign_id,
    )
    assert found, f"no version of {campaign_id}"
    raw = found[0][0]
    return raw if isinstance(raw, dict) else json.loads(raw)


def _front_matter(text_: str) -> dict[str, Any]:
    head = text_.split("---\n", 2)[1]
    data = yaml.safe_load(head)
    assert isinstance(data, dict)
    return data


def _fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def _too_wide(page: Any) -> list[str]:
    """What sticks out past the screen's edge (outside the regions meant to scroll)."""
    return list(
        page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => !e.closest('.scroll') && "
            "e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".map(e => e.tagName + '#' + e.id).slice(0, 8)"
        )
    )


def _new_campaign(page: Any, title: str, step: str) -> None:
    page.locator("#new-campaign summary").click()
    page.fill("#new-title", title)
    page.fill("#new-step", step)


def test_a_campaign_created_in_the_console_lands_in_its_editor(browser: Any, site: Site) -> None:
    context, page = sign_in(browser, site, "marketing")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _new_campaign(page, "Desk Workers' Guide", "Setting up your desk")
    # the id follows the title, and can be changed
    expect(page.locator("#new-id")).to_have_value("desk-workers-guide")
    page.select_option("#cond_1", "in_group:red_flags")
    page.select_option("#cond_sense_1", "not")
    page.select_option("#cond_2", "has:desk_posture")
    page.click("#create-campaign")
    page.wait_for_url(re.compile(r"/admin/campaigns/desk-workers-guide/versions/[^/]+/files/01-"))
    expect(page.locator("#result")).to_contain_text("created as a draft")
    expect(page.locator("h1")).to_contain_text("Setting up your desk")
    expect(page.locator("#step-summary")).to_contain_text("at the first send time")
    files = _stored_files(site, "desk-workers-guide")
    meta = yaml.safe_load(files["campaign.yaml"])
    assert meta["name"] == "Desk Workers' Guide"
    assert meta["audience"] == {
        "all": [{"not": {"in_group": "red_flags"}}, {"has": "desk_posture"}]
    }
    assert list(files) == ["campaign.yaml", "01-setting-up-your-desk.md"]

    page.goto(f"{site.base}/admin/campaigns/desk-workers-guide")
    expect(page.locator("main")).to_contain_text(
        "Who it is for: people without any warning sign and with pain from desk work."
    )

    # an id already taken, or one the loader refuses, is said beside the field, typed kept
    page.goto(f"{site.base}/admin/campaigns")
    _new_campaign(page, "Another", "First")
    page.fill("#new-id", "desk-workers-guide")
    page.click("#create-campaign")
    expect(page.locator("#e-campaign_id")).to_contain_text("already a campaign")
    expect(page.locator("#new-title")).to_have_value("Another")
    page.fill("#new-id", "Bad Id!")
    page.click("#create-campaign")
    expect(page.locator("#e-campaign_id")).to_contain_text("lower-case letters")
    expect(page.locator("#new-step")).to_have_value("First")
    # on a phone the form fits the screen: nothing scrolls sideways
    page.set_viewport_size({"width": 390, "height": 900})
    expect(page.locator("#cond_1")).to_be_visible()
    assert _fits(page), _too_wide(page)
    context.close()
    assert not errors, errors


def _step_editor(browser: Any, site: Site, stem: str) -> tuple[Any, Any]:
    """A clinician's browser context and page on the editor of the bundled series' step
    ``stem``, in a draft."""
    context, page = sign_in(browser, site, "clinician")
    open_draft(page, site, "spasm-education")
    href = page.locator(f"a[href$='/files/{stem}.md']").first.get_attribute("href")
    assert href
    page.goto(site.base + str(href))
    return context, page


def _save(page: Any) -> None:
    """Save and wait for the page the save leads to (its URL may equal the current one)."""
    with page.expect_navigation():
        page.click("#save")
    assert "saved=1" in page.url, page.url


def test_step_settings_through_the_form_show_in_the_yaml_and_in_words(
    browser: Any, site: Site
) -> None:
    context, page = _step_editor(browser, site, "03-hurt-is-not-harm")
    expect(page.locator("#delay_days")).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 900})
    assert _fits(page), _too_wide(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # a delay that is not a number: refused beside the field, the typed text kept
    page.fill("#body", "Hello {{ first_name }}, kept through a refusal.\n")
    page.fill("#delay_days", "two weeks")
    page.click("#save")
    expect(page.locator("#e-delay_days")).to_contain_text("whole number of days")
    expect(page.locator("#delay_days")).to_have_value("two weeks")
    expect(page.locator("#body")).to_have_value("Hello {{ first_name }}, kept through a refusal.\n")

    page.fill("#delay_days", "14")
    page.select_option("#rule_join", "any")
    page.select_option("#cond_1", "has:sciatica")
    page.select_option("#cond_2", "checkin:worse")
    page.check("#checkin")
    _save(page)
    settings = page.locator("#settings").input_value()
    data = yaml.safe_load(settings)
    assert data["delay_days"] == 14 and data["checkin"] is True
    assert data["when"] == {"any": [{"has": "sciatica"}, {"checkin": "worse"}]}
    expect(page.locator("#step-summary")).to_contain_text(
        "sent 14 days after the one before, to people either with pain into the leg or "
        "whose latest check-in answer was “Worse”."
    )
    stored = _front_matter(_stored_files(site, "spasm-education")["03-hurt-is-not-harm.md"])
    assert stored["when"] == data["when"] and stored["delay_days"] == 14
    expect(page.locator("#delay_days")).to_have_value("14")
    expect(page.locator("#cond_2")).to_have_value("checkin:worse")

    # the advanced view saves too, and the form follows it
    page.locator("#advanced summary").click()
    page.fill("#settings", settings.replace("delay_days: 14", "delay_days: 21"))
    expect(page.locator("#form-paused")).to_be_visible()
    _save(page)
    expect(page.locator("#delay_days")).to_have_value("21")
    expect(page.locator("#step-summary")).to_contain_text("21 days after the one before")
    context.close()


def test_a_rule_the_form_cannot_show_survives_a_save_from_the_form(
    browser: Any, site: Site
) -> None:
    context, page = _step_editor(browser, site, "04-pacing-and-graded-activity")
    nested = {"all": [{"has_any": ["sciatica", "neck"]}, {"any": [{"timezone": "Europe/London"}]}]}
    settings = page.locator("#settings").input_value()
    data = yaml.safe_load(settings) or {}
    data["when"] = nested
    page.locator("#advanced summary").click()
    page.fill("#settings", yaml.safe_dump(data, sort_keys=False))
    _save(page)
    expect(page.locator("#rule-advanced")).to_contain_text("edited in the advanced view")

    page.fill("#delay_days", "10")
    _save(page)
    stored = _front_matter(
        _stored_files(site, "spasm-education")["04-pacing-and-graded-activity.md"]
    )
    assert stored["delay_days"] == 10
    assert stored["when"] == nested
    expect(page.locator("#rule-advanced")).to_be_visible()
    context.close()
