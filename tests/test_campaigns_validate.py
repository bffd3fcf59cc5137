"""`clinicmail campaigns validate`: every broken campaign in tests/fixtures/campaigns/broken is
refused with exit 1, naming the file, the line and what is wrong in words an author can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.loader import load_catalog
from tests.support.cli import CLI

BROKEN = Path(__file__).parent / "fixtures" / "campaigns" / "broken"

# case -> (file inside the case folder, line or None, words the message must contain)
CASES: dict[str, tuple[str, int | None, tuple[str, ...]]] = {
    "bad_yaml": (
        "demo/campaign.yaml",
        2,
        ("invalid YAML", "mapping values are not allowed", "must be in quotes"),
    ),
    "bad_front_matter_yaml": ("demo/01-hello.md", 3, ("invalid YAML", "not closed")),
    "unknown_symptom": (
        "demo/01-hello.md",
        6,
        ("when.all[1].has_any", "unknown symptom code 'sciatic'"),
    ),
    "unknown_symptom_audience": (
        "demo/campaign.yaml",
        5,
        ("audience.not.has", "unknown symptom code 'red_flag'"),
    ),
    "missing_variant_file": (
        "demo/01-hello.md",
        6,
        ("variant 'neck'", "01-hello.neck.md does not exist"),
    ),
    "no_steps": ("demo", None, ("no step files", "01-slug.md")),
    "sandbox_mro": ("demo/01-hello.md", 7, ("'__mro__'", "Python internals")),
    "sandbox_attr_filter": ("demo/01-hello.md", 7, ("'|attr'", "filters you can use:")),
    "sandbox_globals": ("demo/01-hello.md", 7, ("'__globals__'", "Python internals")),
    "sandbox_getitem": ("demo/01-hello.md", 2, ("subject:", "'__class__'", "Python internals")),
    "sandbox_huge_output": ("demo/01-hello.md", 7, ("'*'", "longer than 10000")),
    # Templates that would hang or exhaust memory: each is stopped at once, with its line.
    "sandbox_nested_loops": ("demo/01-hello.md", 7, ("too much work", "nested loops")),
    "sandbox_power_tower": ("demo/01-hello.md", 7, ("exponent too large",)),
    "sandbox_ljust": ("demo/01-hello.md", 7, ("padding width of 999999999", "at most")),
    "sandbox_percent_format": ("demo/01-hello.md", 7, ("%-format width", "999999999")),
    "sandbox_huge_replace": ("demo/01-hello.md", 7, ("replace would produce more than",)),
    "sandbox_huge_join": ("demo/01-hello.md", 7, ("join would produce more than",)),
    "sandbox_recursion": ("demo/01-hello.md", 7, ("calls itself too deeply", "recursion")),
    # Template mistakes of any kind are problems with their line, never "unexpected error".
    "template_type_error": ("demo/01-hello.md", 7, ("values of the wrong kind",)),
    "template_format_index": ("demo/01-hello.md", 7, ("by position that is not there",)),
    "template_str_index": ("demo/01-hello.md", 7, ("substring not found",)),
    "template_include": ("demo/01-hello.md", 7, ("'{% include %}' is not available",)),
    "sandbox_nested_repetition": ("demo/01-hello.md", 7, ("'*'", "longer than 262144")),
    "safe_filter": ("demo/01-hello.md", 7, ("'|safe' is not allowed", "always escape")),
    "unknown_variable": (
        "demo/01-hello.md",
        7,
        ("unknown variable 'last_visit'", "allowed variables: clinic, first_name"),
    ),
    "unknown_variable_subject": (
        "demo/01-hello.md",
        3,
        ("subject: unknown variable 'name'", "allowed variables:"),
    ),
    "unknown_clinic_field": (
        "demo/01-hello.md",
        7,
        ("'clinic.phone'", "clinic.address, clinic.booking_url, clinic.emergency_number"),
    ),
    "template_syntax": ("demo/01-hello.md", 7, ("template syntax", "endif")),
    "image_without_alt": ("demo/01-hello.md", 7, ("image has no alt text",)),
    "raw_html": ("demo/01-hello.md", 6, ("raw HTML is not allowed", "Markdown")),
    "missing_subject": ("demo/01-hello.md", 2, ("subject is missing", "subject: …")),
    "bad_send_window": ("demo/campaign.yaml", 4, ("send_window", "08:00-20:00")),
    "reversed_send_window": ("demo/campaign.yaml", 4, ("send_window", "start must be before")),
    "id_mismatch": ("demo/campaign.yaml", 1, ("'demo-two'", "folder name 'demo'")),
    # branching by engagement: references must name a real step that can already have happened
    "engagement_unknown_step": (
        "demo/02-next.md",
        8,
        ("'clicked: demo/helo'", "has no step 'helo'", "step ids: hello, next"),
    ),
    "engagement_unknown_campaign": (
        "demo/01-hello.md",
        3,
        ("names no campaign 'spasm-educaton'", "known campaigns: demo"),
    ),
    "engagement_later_step": (
        "demo/02-next.md",
        4,
        ("'opened: demo/next'", "could never match", "earlier step: hello"),
    ),
    "engagement_in_audience": (
        "demo/campaign.yaml",
        5,
        ("'clicked: demo/hello'", "audience", "could never match"),
    ),
    "unknown_setting": (
        "demo/campaign.yaml",
        4,
        ("cadence is not a known setting", "cadence_days"),
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in BROKEN.iterdir() if p.is_dir()) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_names_file_line_and_problem(sqlite_cli: CLI, case: str) -> None:
    file, line, words = CASES[case]
    run = sqlite_cli("campaigns", "validate", str(BROKEN / case))
    assert run.code == 1, run.out
    assert "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    # One problem line, then the one-line summary.
    assert len(lines) == 2, run.err
    problem, summary = lines
    where = f"{case}/{file}:{line}: " if line else f"{case}/{file}: "
    assert problem.startswith(where), problem
    for w in words:
        assert w in problem, (w, problem)
    assert summary == f"clinicmail: 1 problem(s) in {BROKEN / case}"


def test_every_problem_is_reported_not_just_the_first(sqlite_cli: CLI, tmp_path: Path) -> None:
    """Two broken campaigns in one library: both are named."""
    import shutil

    root = tmp_path / "lib"
    shutil.copytree(BROKEN / "unknown_variable" / "demo", root / "demo")
    shutil.copytree(BROKEN / "bad_send_window" / "demo", root / "other")
    (root / "other" / "campaign.yaml").write_text(
        "id: other\nname: Other\nsend_window: 8am-8pm\n", encoding="utf-8"
    )
    run = sqlite_cli("campaigns", "validate", str(root))
    assert run.code == 1
    assert "lib/demo/01-hello.md:7: body: unknown variable 'last_visit'" in run.err
    assert "lib/other/campaign.yaml:3: send_window" in run.err
    assert run.err.strip().endswith("2 problem(s) in " + str(root))


def test_bundled_library_validates(sqlite_cli: CLI) -> None:
    # Strictly: the content gate's warnings (grade, length, urgent care …) fail it too.
    run = sqlite_cli("campaigns", "validate", "--strict", str(BUNDLED_LIBRARY))
    assert run.code == 0, run.err
    assert run.out.startswith("ok: 1 campaign(s), 10 step(s)")
    assert run.err == ""
    # The default directory is the bundled library too.
    run = sqlite_cli("campaigns", "validate")
    assert run.code == 0, run.err


def test_bundled_library_shape() -> None:
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    campaign = catalog.get("spasm-education")
    assert campaign is not None and campaign.active
    assert len(campaign.steps) == 10
    variant_ids = {v.id for s in campaign.steps for v in s.variants}
    # a path per patient group, and two engagement branches: a "worse" check-in, a click on
    # the strength email
    assert variant_ids == {
        "accident",
        "acute",
        "arm",
        "chronic",
        "disc",
        "facet",
        "mid-back",
        "neck",
        "recurring",
        "sciatica",
        "sports",
        "stenosis",
        "lifting",
        "low-back",
        "checkin-worse",
        "strength",
    }


def test_missing_directory_is_one_clear_line(sqlite_cli: CLI, tmp_path: Path) -> None:
    run = sqlite_cli("campaigns", "validate", str(tmp_path / "nope"))
    assert run.code == 1
    assert "does not exist" in run.err
    assert "Traceback" not in run.err


def _library(root: Path, body: str) -> Path:
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "campaign.yaml").write_text(
        "id: demo\nname: Demo series\nstatus: active\n", encoding="utf-8"
    )
    (root / "demo" / "01-hello.md").write_text(
        f'---\nsubject: "Hello"\npreheader: "A short hello."\n---\n{body}', encoding="utf-8"
    )
    return root


def test_validate_renders_with_the_real_clinic_settings(sqlite_cli: CLI, tmp_path: Path) -> None:
    """A template that only misbehaves for the real clinic's name must fail validation, not the
    first tick."""
    root = _library(
        tmp_path / "lib",
        "Hi {{ first_name }},\n\n"
        "{% if clinic.name == 'Spine & Sport Clinic' %}"
        "{% for a in 'x' * 10000 %}{% for b in 'x' * 10000 %}.{% endfor %}{% endfor %}"
        "{% endif %}\n",
    )
    assert sqlite_cli("campaigns", "validate", str(root)).code == 0  # the demo name: fine
    sqlite_cli.env("CLINICMAIL_CLINIC_NAME", "Spine & Sport Clinic")
    run = sqlite_cli("campaigns", "validate", str(root))
    assert run.code == 1
    assert "lib/demo/01-hello.md:7: body: the template does too much work" in run.err


def test_every_problem_in_one_file_is_reported(sqlite_cli: CLI, tmp_path: Path) -> None:
    root = _library(
        tmp_path / "lib",
        "Hi {{ first_name }},\n\n{{ x.__class__ }}\n\n![](https://x.example/a.png)\n\n<b>bold</b>\n",
    )
    run = sqlite_cli("campaigns", "validate", str(root))
    assert run.code == 1
    assert "01-hello.md:7: body: '__class__' reaches into Python internals" in run.err
    assert "01-hello.md:9: body: an image has no alt text" in run.err
    assert "01-hello.md:11: body: raw HTML is not allowed" in run.err
    assert run.err.strip().endswith(f"3 problem(s) in {root}")


def test_an_empty_campaigns_directory_is_an_error(sqlite_cli: CLI, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    run = sqlite_cli("campaigns", "validate", str(empty))
    assert run.code == 1
    assert "no campaigns here" in run.err and "ok:" not in run.out
    sqlite_cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(empty))
    run = sqlite_cli("campaigns", "validate")
    assert run.code == 1 and "no campaigns here" in run.err
