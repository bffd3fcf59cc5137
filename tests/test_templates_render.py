"""Rendering quality: the sandbox, the compliance footer, the text part, per-recipient tokens,
size bounds, the responsive/dark-mode layout, image alt text, and snapshots of real emails.

Snapshots live in tests/snapshots/; set CLINICMAIL_UPDATE_SNAPSHOTS=1 to rewrite them after an
intended change, then review the diff.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns import BUNDLED_LIBRARY
from campaigns.loader import CAMPAIGN_VARIABLES, load_catalog
from campaigns.rendering import render_variant
from subscribers.segments import Facts
from templates import ClinicInfo, Content, Rendered, Renderer, TemplateProblem, fill
from templates.render import MAX_OUTPUT, PLACEHOLDER_FIELDS, substitutions, text_token
from templates.system import SYSTEM_EMAILS, system_content
from tests.support.clinic import CLINIC

VALUES = {
    "first_name": "Sam",
    "unsubscribe_url": "https://mail.riverside.example/unsubscribe/TOKEN-U",
    "preferences_url": "https://mail.riverside.example/preferences/TOKEN-P",
}
DISCLAIMER = "This email is general education, not medical advice"
SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("CLINICMAIL_UPDATE_SNAPSHOTS") == "1"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(CLINIC)


def _render(renderer: Renderer, body: str, subject: str = "Hello {{ first_name }}") -> Rendered:
    return renderer.render(
        Content(subject=subject, preheader="A short preview line.", body=body),
        reason="you subscribed to our weekly emails",
        list_name="test",
    )


# -- the sandbox --------------------------------------------------------------------------------
def test_sandbox_is_immutable_autoescaped_and_strict(renderer: Renderer) -> None:
    env = renderer.sandbox
    assert isinstance(env, ImmutableSandboxedEnvironment)
    assert env.undefined is StrictUndefined
    assert env.autoescape is True
    assert env.globals == {}
    assert "safe" not in env.filters and "attr" not in env.filters
    assert "format" not in env.filters  # str.format-style escapes go through attributes


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ clinic.__class__ }}",
        "{{ first_name.upper.__globals__ }}",
        "{{ clinic['__class__'] }}",
        "{{ ''|attr('__class__') }}",
        "{{ first_name|safe }}",
        "{{ 'x' * 100000000000 }}",
        "{{ 9 ** 999999 }}",
        "{{ range(10) }}",
        "{{ lipsum() }}",
        "{{ cycler }}",
    ],
)
def test_check_refuses_escapes(renderer: Renderer, body: str) -> None:
    with pytest.raises(TemplateProblem) as info:
        renderer.check(Content("s", "", f"Hi\n{body}\n"), CAMPAIGN_VARIABLES)
    assert info.value.part == "body"
    assert info.value.message.startswith("body: ")


def test_render_time_escapes_are_caught_too(renderer: Renderer) -> None:
    """Even without check(), rendering refuses unsafe attribute access."""
    with pytest.raises(TemplateProblem, match=r"not allowed|undefined|unsafe"):
        _render(renderer, "{{ clinic.__class__.__mro__ }}")


def test_values_are_escaped_and_raw_html_is_not_rendered(renderer: Renderer) -> None:
    evil = ClinicInfo("A <b>bold</b> & co", "1 <i>St</i>", "a@b.example", "https://b", "https://x")
    r = Renderer(evil)
    out = r.render(
        Content("s", "", "{{ clinic.name }}\n\n<script>alert(1)</script>\n"),
        reason="r",
        list_name="l",
    )
    assert "<b>bold</b>" not in out.html and "<script>" not in out.html
    assert "A &lt;b&gt;bold&lt;/b&gt; &amp; co" in out.html
    assert "&lt;script&gt;" in out.html


def test_output_size_is_bounded(renderer: Renderer) -> None:
    with pytest.raises(TemplateProblem, match=f"more than {MAX_OUTPUT} characters"):
        _render(renderer, "word " * (MAX_OUTPUT // 5 + 1))
    with pytest.raises(TemplateProblem, match="longer than"):
        _render(renderer, "{{ first_name * 100000 }}")


# -- the layout and footer ----------------------------------------------------------------------
# Templates from the attack report: each would hang or take gigabytes; each must stop at once
# with a plain reason and the line it is on.
HOSTILE = {
    "nested loops": (
        "{% for a in 'x' * 10000 %}{% for b in 'x' * 10000 %}{% for c in 'x' * 10000 %}"
        "{{ a }}{% endfor %}{% endfor %}{% endfor %}",
        "too much work",
    ),
    "power tower": ("{{ 9 ** 9 ** 9 ** 9 ** 9 }}", "exponent too large"),
    "stacked powers": ("{{ ((2 ** 64) ** 64) ** 64 }}", "exponent too large"),
    "ljust": ("{{ 'x'.ljust(999999999) }}", "padding width"),
    "center": ("{{ 'x'.center(10 ** 9) }}", "padding width"),
    "percent format": ("{{ '%0999999999d' % 1 }}", "%-format width"),
    "percent star": ("{{ '%*d' % (999999999, 1) }}", "'*' widths"),
    "brace format": ("{{ '{:>999999999}'.format('x') }}", "format width"),
    "replace filter": ("{{ ('x' * 10000)|replace('x', 'y' * 10000) }}", "replace would produce"),
    "replace method": ("{{ ('x' * 10000).replace('x', 'y' * 10000) }}", "replace would produce"),
    "join method": ("{{ ('y' * 10000).join('x' * 10000) }}", "join would produce"),
    "join filter": ("{{ ('x' * 10000)|join('y' * 1000) }}", "join would produce"),
    "recursion": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion"),
    "doubling": (
        "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% endif %}{% endmacro %}"
        "{{ f('x' * 1000, 60) }}",
        "joined with '~' would be longer than",  # refused before the join, not after
    ),
    # Round 2: each shares one object many times, so no single step looked large before.
    "nested repetition": ("{{ [[('x' * 10000)] * 10000] * 6 }}", "longer than"),
    "repetition then join": (
        "{{ ([('x' * 10000)] * 100)|join }}",
        "longer than",
    ),
    "list concatenation": ("{{ ['x' * 9000] * 20 + ['y' * 9000] * 20 }}", "'+' would make"),
    "shared lists": (
        "{% set a = ['x' * 10000] * 10 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
        "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{{ c|upper }}",
        "longer than",
    ),
    "many format fields": (
        "{% set a = 'x' * 10000 %}{{ '{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}'.format(a) }}",
        "format would produce",
    ),
    "many percent fields": (
        "{% set a = 'x' * 10000 %}{{ '%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s' % {'a': a} }}",
        "'%' would make",
    ),
    "binary recursion": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "too much work",
    ),
}


MISTAKES = {
    "int plus str": ("{{ 1 + 'a' }}", "values of the wrong kind"),
    "format without values": ("{{ '{0}'.format() }}", "by position that is not there"),
    "index of a missing substring": ("{{ 'a'.index('b') }}", "substring not found"),
    "missing key": ("{{ {'a': 1}['b'] }}", "b"),
    "include": ("{% include 'other.md' %}", "'{% include %}' is not available"),
    "import": ("{% import 'macros' as m %}", "'{% import %}' is not available"),
    "extends": ("{% extends 'base.html' %}", "'{% extends %}' is not available"),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_template_mistakes_are_problems_with_their_line(renderer: Renderer, name: str) -> None:
    body, reason = MISTAKES[name]
    content = Content("Hello", "Hi", f"Hi {{{{ first_name }}}},\n\n{body}\n", name)
    with pytest.raises(TemplateProblem) as caught:
        renderer.check(content, CAMPAIGN_VARIABLES)
    assert reason in caught.value.message
    assert caught.value.message.startswith("body: ")
    assert caught.value.line == 3


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_templates_stop_with_a_clear_reason_and_line(renderer: Renderer, name: str) -> None:
    body, reason = HOSTILE[name]
    content = Content("Hello", "Hi", f"Hi {{{{ first_name }}}},\n\n{body}\n", name)
    with pytest.raises(TemplateProblem) as caught:
        renderer.check(content, CAMPAIGN_VARIABLES)
    assert reason in caught.value.message
    assert caught.value.part == "body" and caught.value.line == 3


def test_range_is_not_available(renderer: Renderer) -> None:
    content = Content("Hello", "Hi", "{% for i in range(10 ** 9) %}.{% endfor %}", "range")
    with pytest.raises(TemplateProblem, match="unknown variable 'range'"):
        renderer.check(content, CAMPAIGN_VARIABLES)


def test_ordinary_loops_and_filters_still_work(renderer: Renderer) -> None:
    body = (
        "{% for word in ['one', 'two'] %}{{ loop.index }}={{ word|upper }} {% endfor %}"
        "{{ ['a', 'b']|join(', ') }} {{ clinic.name|replace('Clinic', 'Practice') }} "
        "{{ '%05.1f' % 3.14159 }} {{ '{:04}'.format(7) }} {{ 2 ** 10 }}"
    )
    out = _render(renderer, body)
    for expected in ("1=ONE 2=TWO", "a, b", "Practice", "003.1", "0007", "1024"):
        assert expected in out.text, expected


def test_html_footer_has_everything_the_law_and_the_clinic_need(renderer: Renderer) -> None:
    rendered = _render(renderer, "Hi {{ first_name }},\n\nA short note.\n")
    _, page, _ = fill(rendered, VALUES)
    footer = page[page.index('class="footer"') :]
    assert html.escape(CLINIC.name) in footer
    assert CLINIC.address in footer
    assert f'href="{VALUES["unsubscribe_url"]}"' in footer
    assert f'href="{VALUES["preferences_url"]}"' in footer
    assert ">Unsubscribe</a>" in footer and "preferences</a>" in footer
    assert DISCLAIMER in footer
    assert "because you subscribed to our weekly emails" in footer


def test_transactional_mail_has_no_unsubscribe_but_keeps_address_and_disclaimer(
    renderer: Renderer,
) -> None:
    out = renderer.render(
        system_content("confirm"),
        reason="someone asked to subscribe this address",
        list_name="confirm",
        with_unsubscribe=False,
    )
    assert "Unsubscribe" not in out.html and "Unsubscribe" not in out.text
    assert CLINIC.address in out.html and CLINIC.address in out.text
    assert DISCLAIMER in out.html and DISCLAIMER in out.text


def test_layout_is_responsive_and_has_dark_mode(renderer: Renderer) -> None:
    page = _render(renderer, "Hi.\n").html
    assert "@media (prefers-color-scheme: dark)" in page
    assert '<meta name="color-scheme" content="light dark">' in page
    assert "max-width: 600px" in page
    assert re.search(r"@media \(max-width: \d+px\)", page)
    assert '<html lang="en"' in page
    # CSS is inlined for clients that drop <style>, and the <style> kept for media queries.
    assert re.search(r'<div class="card" style="[^"]*max-width: 600px', page)


def test_preheader_is_hidden_text_at_the_top(renderer: Renderer) -> None:
    page = _render(renderer, "Hi.\n").html
    body = page[page.index("<body") :]
    assert body.index("A short preview line.") < body.index('class="content"')
    assert "display:none" in body[: body.index("A short preview line.")]


# -- the text part ------------------------------------------------------------------------------
def test_text_part_reads_well(renderer: Renderer) -> None:
    rendered = _render(
        renderer,
        "Hi {{ first_name }},\n\n**Bold idea.** Read [how to book]({{ clinic.booking_url }}).\n\n"
        "- one\n- two\n\n![A person at a desk](https://riverside.example/desk.png)\n",
    )
    _, _, text = fill(rendered, VALUES)
    assert not re.search(r"</?[a-zA-Z][^>]*>", text), text
    assert "&amp;" not in text and "&#" not in text
    assert text.startswith(
        "Hi Sam,\n\nBold idea. Read [how to book](https://riverside.example/book)."
    )
    assert "* one" in text and "* two" in text
    assert "A person at a desk" in text  # images show their alt text
    assert f"Unsubscribe: {VALUES['unsubscribe_url']}" in text
    assert f"Change your preferences: {VALUES['preferences_url']}" in text
    assert CLINIC.name in text and CLINIC.address in text  # "&" is not escaped in text
    assert DISCLAIMER in text
    assert "\n\n\n" not in text


# -- per-recipient tokens -----------------------------------------------------------------------
def test_tokens_survive_markdown_links_and_css_inlining(renderer: Renderer) -> None:
    rendered = _render(
        renderer,
        "[Manage your emails]({{ preferences_url }}) or [leave]({{ unsubscribe_url }}).\n",
    )
    assert 'href="@@preferences_url@@"' in rendered.html
    assert 'href="@@unsubscribe_url@@"' in rendered.html
    assert text_token("preferences_url") in rendered.text
    assert "@@preferences_url@@" not in rendered.text  # the text part has its own tokens
    assert rendered.fields == {"first_name", "unsubscribe_url", "preferences_url"}
    assert set(rendered.fields) <= set(PLACEHOLDER_FIELDS)


def test_fill_escapes_for_html_only(renderer: Renderer) -> None:
    rendered = _render(renderer, "Hi {{ first_name }},\n")
    name = "O'Brien <x> & co"
    subject, page, text = fill(rendered, {**VALUES, "first_name": name})
    assert subject == f"Hello {name}"
    assert "Hi O&#x27;Brien &lt;x&gt; &amp; co," in page
    assert name not in page
    assert text.startswith(f"Hi {name},")
    assert not re.search(r"@@[a-z_]+@@", subject + page + text)


def test_substitutions_are_what_sendgrid_gets() -> None:
    subs = substitutions({"first_name": "<Ann>"})
    assert subs == {"@@first_name@@": "&lt;Ann&gt;", "@@first_name__t@@": "<Ann>"}


def test_unknown_tokens_are_left_alone(renderer: Renderer) -> None:
    rendered = _render(renderer, "Write to us at team@@example.com.\n")
    _, page, text = fill(rendered, VALUES)
    assert "team@@example.com" in text and "team@@example.com" in page


# -- images -------------------------------------------------------------------------------------
def test_images_need_alt_text(renderer: Renderer) -> None:
    with pytest.raises(TemplateProblem, match="no alt text") as info:
        renderer.check(Content("s", "", "Hi\n\n![](https://x.example/a.png)\n"), frozenset())
    assert info.value.line == 3
    renderer.check(Content("s", "", "Hi\n\n![A stretch](https://x.example/a.png)\n"), frozenset())
    page = _render(renderer, "![A stretch](https://x.example/a.png)\n").html
    assert re.search(r'<img src="https://x.example/a.png" alt="A stretch"', page)


# -- the library and system emails --------------------------------------------------------------
def test_system_emails_pass_the_same_checks(renderer: Renderer) -> None:
    for name in SYSTEM_EMAILS:
        renderer.check(
            system_content(name),
            CAMPAIGN_VARIABLES | {"confirm_url", "record_url", "keep_url", "urgent"},
        )


def test_every_library_email_renders_with_footer_and_no_leftover_markup(
    renderer: Renderer,
) -> None:
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    for campaign in catalog:
        for step in campaign.steps:
            for variant in (step.default, *step.variants):
                rendered = renderer.render(
                    Content(variant.subject, variant.preheader, variant.body, variant.file),
                    reason="r",
                    list_name=campaign.id,
                )
                subject, page, text = fill(rendered, VALUES)
                assert "{{" not in page + text and "{%" not in page + text, variant.file
                assert "**" not in text and "](" not in re.sub(r"\]\(https?://", "", text)
                assert DISCLAIMER in page and VALUES["unsubscribe_url"] in page
                assert len(subject) <= 78, (variant.file, subject)
                assert len(page) < 100_000, variant.file  # Gmail clips messages over ~102 KB


# -- snapshots ----------------------------------------------------------------------------------
PERSONAS = {
    "general": {"lower_back", "acute_spasm"},
    "sciatica": {"lower_back", "sciatica"},
    "desk-neck": {"neck", "desk_posture"},
}


def _compare(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"missing snapshot {path}; run with CLINICMAIL_UPDATE_SNAPSHOTS=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} changed; review it and set CLINICMAIL_UPDATE_SNAPSHOTS=1"


@pytest.mark.parametrize("step_number", [1, 6])
@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_snapshots(renderer: Renderer, persona: str, step_number: int) -> None:
    catalog, _ = load_catalog(BUNDLED_LIBRARY)
    campaign = catalog.get("spasm-education")
    assert campaign is not None
    step = next(s for s in campaign.steps if s.number == step_number)
    variant = step.variant_for(Facts(symptoms=frozenset(PERSONAS[persona])))
    # The production path: the dispatcher renders campaign email through render_variant.
    rendered = render_variant(renderer, campaign, variant)
    subject, page, text = fill(rendered, VALUES)
    stem = f"spasm-education/{step_number:02d}-{persona}"
    _compare(f"{stem}.txt", f"Subject: {subject}\nVariant: {variant.id}\n\n{text}")
    _compare(f"{stem}.html", page)


def test_snapshots_differ_by_persona() -> None:
    if UPDATE:
        return
    six = {p: (SNAPSHOTS / f"spasm-education/06-{p}.txt").read_text() for p in PERSONAS}
    assert len(set(six.values())) == 3
    one = {p: (SNAPSHOTS / f"spasm-education/01-{p}.txt").read_text() for p in PERSONAS}
    assert len(set(one.values())) == 3
