"""Every campaign email has the same clear structure: the clinic's logo (or name) in its brand
colour, a visible headline, ``<h2>`` section headings, one booking button that is tracked like
every link, dark-mode-safe colours; and urgent-care sections name the clinic's own emergency
number and urgent-advice line (settings, so a clinic abroad says 911 or 112)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from app.settings import contrast_with_white
from campaigns import BUNDLED_LIBRARY
from campaigns.loader import load_catalog
from campaigns.rendering import render_variant
from subscribers.segments import Facts
from templates import ClinicInfo, Renderer, fill
from templates.tracking import track
from tests.support.cli import CLI
from tests.support.clinic import CLINIC as RIVERSIDE

BOOKING = "https://riverside.example/book"
CLINIC = replace(
    RIVERSIDE,
    booking_url=BOOKING,
    emergency_number="911",
    urgent_advice="your urgent care line",
    logo_url="https://riverside.example/logo.png",
    brand_colour="#5b2a86",
)
VALUES = {"first_name": "Sam", "unsubscribe_url": "https://u", "preferences_url": "https://p"}


def _emails() -> list[tuple[str, str, str]]:
    """(file, html, text) of every library email, rendered for CLINIC."""
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    renderer = Renderer(CLINIC)
    out = []
    for campaign in catalog:
        for step in campaign.steps:
            for variant in (step.default, *step.variants):
                _, page, text = fill(render_variant(renderer, campaign, variant), VALUES)
                out.append((variant.file, page, text))
    return out


def test_every_email_has_headline_sections_and_one_booking_button() -> None:
    emails = _emails()
    assert len(emails) >= 49
    for file, page, text in emails:
        assert len(re.findall(r"<h1\b", page)) == 1, file
        assert len(re.findall(r"<h2\b", page)) >= 2, file
        buttons = re.findall(r'<a class="button" href="([^"]+)"', page)
        assert buttons == [BOOKING], file
        assert f"[Book an assessment]({BOOKING})" in text, file
        assert "<strong>Your next step" not in page  # no bold paragraphs posing as headings


def test_the_clinic_look_comes_from_settings() -> None:
    _, page, _ = _emails()[0]
    assert (
        '<img src="https://riverside.example/logo.png" alt="Riverside Back &amp; Neck Clinic"'
        in page
    )
    assert "#5b2a86" in page  # headings, top border and button
    plain = Renderer(ClinicInfo("Plain Clinic", "1 Road", "a@b.example", BOOKING, "https://x"))
    catalog, _ = load_catalog(BUNDLED_LIBRARY)
    campaign = catalog.campaigns["spasm-education"]
    _, page, _ = fill(render_variant(plain, campaign, campaign.steps[0].default), VALUES)
    assert "<img" not in page.split('class="content"')[0]  # no logo image when unset
    assert 'class="brand"' in page and "Plain Clinic</div>" in page


def test_dark_mode_keeps_text_and_button_readable() -> None:
    _, page, _ = _emails()[0]
    dark = page[page.index("prefers-color-scheme: dark") :]
    dark = dark[: dark.index("</style>")]
    assert ".content h1" in dark and ".content h2" in dark
    assert ".content a.button" in dark and "color: #ffffff !important" in dark
    assert contrast_with_white("#17453b") >= 4.5  # the default brand colour


def test_the_button_is_tracked_like_every_link() -> None:
    catalog, _ = load_catalog(BUNDLED_LIBRARY)
    campaign = catalog.campaigns["spasm-education"]
    rendered = render_variant(Renderer(CLINIC), campaign, campaign.steps[1].default)
    tracked = track(rendered)
    assert BOOKING in tracked.links
    assert f'class="button" href="{BOOKING}"' not in tracked.rendered.html
    assert re.search(r'class="button" href="@@link_\d+@@"', tracked.rendered.html)


def test_urgent_care_names_the_clinics_own_numbers() -> None:
    catalog, _ = load_catalog(BUNDLED_LIBRARY)
    campaign = catalog.campaigns["spasm-education"]
    first = campaign.steps[0]
    for facts in (Facts(frozenset({"lower_back"})), Facts(frozenset({"neck"}))):
        variant = first.variant_for(facts)
        _, _, text = fill(render_variant(Renderer(CLINIC), campaign, variant), VALUES)
        assert "Call 911 or go to the nearest emergency department" in text
        assert "Contact your urgent care line or your GP" in text
        assert "999" not in text and "NHS 111" not in text


def test_preview_uses_the_emergency_settings(sqlite_cli: CLI) -> None:
    run = sqlite_cli("campaigns", "preview", "spasm-education", "1", "--symptoms", "neck")
    assert run.code == 0, run.err
    assert "Call 999 or go to the nearest emergency department" in run.out and "NHS 111" in run.out
    sqlite_cli.env("CLINICMAIL_EMERGENCY_NUMBER", "112")
    sqlite_cli.env("CLINICMAIL_URGENT_ADVICE", "116 117")
    run = sqlite_cli("campaigns", "preview", "spasm-education", "1", "--symptoms", "neck")
    assert run.code == 0, run.err
    assert "Call 112 or go to the nearest emergency department" in run.out
    assert "Contact 116 117 or your GP" in run.out


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("CLINICMAIL_BRAND_COLOUR", "green", "hex colour"),
        ("CLINICMAIL_BRAND_COLOUR", "#ffff00", "too light"),
        ("CLINICMAIL_LOGO_URL", "http://clinic.example/logo.png", "https://"),
        ("CLINICMAIL_EMERGENCY_NUMBER", " ", "999"),
    ],
)
def test_bad_look_or_care_settings_are_one_line(
    sqlite_cli: CLI, name: str, value: str, words: str
) -> None:
    sqlite_cli.env(name, value)
    run = sqlite_cli("tick", "--json")
    assert run.code == 1 and "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and words in lines[0], run.err
