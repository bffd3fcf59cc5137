"""The clinic's care lines (CLINICMAIL_EMERGENCY_NUMBER, CLINICMAIL_URGENT_ADVICE,
CLINICMAIL_FAMILY_DOCTOR) reach every email and page that gives health advice: with a clinic
abroad's settings, nothing says 999, NHS 111, A&E or GP."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.loader import DEMO_CLINIC, load_catalog
from campaigns.rendering import render_variant
from subscribers.pages import signup_form
from subscribers.web import urgent_care
from templates import Renderer, fill
from templates.system import SYSTEM_EMAILS, system_content
from tests.support.app import app_for
from tests.support.backends import sqlite_only
from tests.support.cli import CLI

ABROAD: dict[str, Any] = {
    "emergency_number": "911",
    "urgent_advice": "the Nurse Advice Line",
    "family_doctor": "family doctor",
}
UK_WORDS = re.compile(r"(?<![\w.])(999|111)(?![\w.])|\bNHS\b|\bA ?& ?E\b|A&amp;E|\bGPs?\b")
VALUES = {"first_name": "Sam", "unsubscribe_url": "u", "preferences_url": "p", "confirm_url": "c"}


def _uk_words(text: str) -> list[str]:
    return [m.group(0) for m in UK_WORDS.finditer(text)]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(replace(DEMO_CLINIC, **ABROAD))


def test_every_library_email_uses_the_clinics_lines(renderer: Renderer) -> None:
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    rendered = 0
    for campaign in catalog:
        for step in campaign.steps:
            for variant in (step.default, *step.variants):  # every symptom mix gets one of these
                subject, html, text = fill(render_variant(renderer, campaign, variant), VALUES)
                for part in (subject, html, text):
                    assert _uk_words(part) == [], (variant.file, _uk_words(part))
                rendered += 1
    assert rendered >= 50
    week_one = catalog.get("spasm-education").steps[0].default  # type: ignore[union-attr]
    _, _, text = fill(render_variant(renderer, catalog.get("spasm-education"), week_one), VALUES)  # type: ignore[arg-type]
    assert "Call 911 or go to the nearest emergency department now" in text
    assert "Contact the Nurse Advice Line or your family doctor the same day" in text


@pytest.mark.parametrize("name", SYSTEM_EMAILS)
@pytest.mark.parametrize("urgent", [False, True])
def test_every_system_email_uses_the_clinics_lines(
    renderer: Renderer, name: str, urgent: bool
) -> None:
    extra = {"urgent": urgent, "record_url": "r", "keep_url": "k"}
    out = renderer.render(system_content(name), reason="r", list_name="system", extra=extra)
    subject, html, text = fill(out, VALUES)
    for part in (subject, html, text):
        assert _uk_words(part) == [], (name, _uk_words(part))
    if name in ("safety", "checkin-followup") or (name == "confirm" and urgent):
        assert "Call 911 or go to the nearest emergency department now" in text
        assert "Nurse Advice Line" in text
    if name == "confirm":  # one line for everyone, the table for a red flag
        assert "call 911 or go to the nearest emergency department now" in text
        assert ("chest pain" in text) is urgent


def test_pages_and_the_api_answer_use_the_clinics_lines() -> None:
    page = signup_form("Clinic", lines=ABROAD)
    answer = urgent_care(ABROAD)
    for text in (page, answer):
        assert _uk_words(text) == [], _uk_words(text)
        assert "Call 911" in text and "the Nurse Advice Line or your family doctor" in text


@sqlite_only("pages' and emails' words, from settings")
def test_the_running_app_says_the_configured_lines(cli: CLI) -> None:
    cli.env("CLINICMAIL_EMERGENCY_NUMBER", "911")
    cli.env("CLINICMAIL_URGENT_ADVICE", "the Nurse Advice Line")
    cli.env("CLINICMAIL_FAMILY_DOCTOR", "family doctor")
    with app_for(cli) as (client, ctx):
        assert ctx.clinic.care_lines() == ABROAD
        signup = client.get("/signup").text
        assert _uk_words(signup) == [] and "Call 911" in signup
        answer = client.post(
            "/api/subscribers",
            json={
                "email": "ana@example.com",
                "symptoms": ["lower_back", "red_flag_leg_weakness"],
                "timezone": "Europe/London",
                "consent": True,
                "health_consent": True,
            },
        )
        assert answer.status_code == 202, answer.text
        urgent = answer.json()["urgent_care"]
        assert _uk_words(urgent) == [] and "Call 911" in urgent
        # the hosted form's answer to a signup that ticked a warning sign
        form = {
            "email": "bea@example.com",
            "consent": "yes",
            "health_consent": "yes",
            "symptoms": ["neck", "red_flag_major_trauma"],
        }
        inbox = client.post("/signup", data=form)
        assert inbox.status_code == 200, inbox.text
        assert "Check your inbox" in inbox.text and "Call 911" in inbox.text
        assert _uk_words(inbox.text) == [], _uk_words(inbox.text)


def test_a_bad_care_line_is_one_clear_line(bare_cli: CLI) -> None:
    bare_cli.env("CLINICMAIL_FAMILY_DOCTOR", "x" * 61)
    run = bare_cli("doctor")
    assert run.code == 1
    assert "CLINICMAIL_FAMILY_DOCTOR" in run.err and len(run.err.strip().splitlines()) == 1
