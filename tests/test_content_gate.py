"""The content gate (campaigns/gate.py): what it refuses, what it warns about, and how
`clinicmail campaigns validate` reports it (file, line, reason; errors fail, warnings fail only
with --strict)."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.gate import PHRASES, Finding, check_campaign, check_text
from campaigns.loader import load_catalog
from templates import warning_signs
from tests.support.cli import CLI

LIBRARY_WEEK_ONE = (BUNDLED_LIBRARY / "spasm-education" / "01-why-your-back-locks-up.md").read_text(
    encoding="utf-8"
)
_GOOD_BODY = LIBRARY_WEEK_ONE.split("---\n", 2)[2]
# The same email with the table written out by hand (the form a clinic's own library may use).
_BY_HAND = warning_signs.markdown(
    {k: f"{{{{ clinic.{k} }}}}" for k in warning_signs.LINE_FIELDS}, ("emergency", "urgent")
)
_HAND_BODY = _GOOD_BODY.replace("{{ warning_signs.now }}", _BY_HAND)
# Plain, ordinary sentences: enough words to pass the length check, nothing else to report.
FILLER = "We walk a little each day and it helps us feel well. " * 16


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def test_the_bundled_library_passes_with_nothing_to_report() -> None:
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    assert [f for c in catalog for f in check_campaign(c)] == []


@pytest.mark.parametrize(
    ("text", "severity", "reason"),
    [
        ("This will cure it for good.", "error", "promises"),
        ("We guarantee results.", "error", "promises"),
        ("Your spine shows wear and tear.", "error", "age changes"),
        ("It is a degenerative spine.", "error", "age"),
        ("You have a slipped disc.", "error", "do not slip"),
        ("A bone is out of place.", "error", "displaced"),
        ("Traction can help.", "error", "NICE NG59"),
        ("Never bend forward again.", "error", "stenosis"),
        ("Bad posture causes it.", "warning", "posture"),
        ("Try bed rest for a week.", "warning", "stay active"),
    ],
)
def test_phrases_a_clinic_should_not_send(text: str, severity: str, reason: str) -> None:
    found = [f for f in check_text("Hello", "", f"Hi.\n\n{text}\n\n{FILLER}", week=2)]
    assert codes(found) == ["phrase"], found
    assert found[0].severity == severity
    assert found[0].path == "body" and found[0].line == 3
    assert reason in found[0].message


def test_every_phrase_has_a_reason() -> None:
    assert all(len(p.reason) > 20 for p in PHRASES)


@pytest.mark.parametrize(
    "subject",
    ["Your sciatica this week", "Why your neck hurts", "Living with chronic pain", "Disc news"],
)
def test_subjects_that_name_a_condition_are_errors(subject: str) -> None:
    found = check_text(subject, "", FILLER, week=2)
    assert codes(found) == ["subject-condition"]
    assert found[0].severity == "error" and found[0].path == "subject"


def test_a_general_subject_passes() -> None:
    assert check_text("Getting stronger, step by step", "", FILLER, week=2) == []


def test_grade_and_length_are_warnings() -> None:
    hard = (
        "Rehabilitation of intervertebral structures necessitates considerable "
        "physiotherapeutic intervention. "
    ) * 20
    found = check_text("Hello", "", hard, week=2)
    assert codes(found) == ["reading-grade"], found
    assert found[0].severity == "warning" and "grade" in found[0].message
    short = check_text("Hello", "", "Hi {{ first_name }}.", week=2)
    assert codes(short) == ["word-count"] and "150-400" in short[0].message
    long = check_text("Hello", "", FILLER * 3, week=2)
    assert codes(long) == ["word-count"]


def test_week_one_needs_the_urgent_care_section() -> None:
    assert codes(check_text("Hello", "", FILLER, week=2)) == []
    missing = check_text("Hello", "", FILLER, week=1)
    assert codes(missing) == ["urgent-care"]
    assert "{{ clinic.emergency_number }}" in missing[0].message
    assert check_text("Welcome", "", _GOOD_BODY, week=1) == []


def test_an_incomplete_list_of_signs_is_named() -> None:
    assert "{{ warning_signs.now }}" in _GOOD_BODY
    assert check_text("Welcome", "", _HAND_BODY, week=1) == []
    body = _HAND_BODY.replace("- cancer now or in the past\n", "").replace(
        "{{ clinic.urgent_advice }}", "a helpline"
    )
    found = check_text("Welcome", "", body, week=1)
    assert sorted(codes(found)) == ["urgent-care", "urgent-signs"]
    signs = next(f for f in found if f.code == "urgent-signs")
    assert "history of cancer" in signs.message and "clumsy" not in signs.message
    assert signs.line is not None and body.splitlines()[signs.line - 1].startswith("## ")


def test_a_template_error_is_reported_not_raised() -> None:
    found = check_text("Hello", "", "Hi {{ nobody }}", week=2)
    assert codes(found) == ["template"] and found[0].severity == "error"


def _campaign(root: Path, body: str, *, front: str = "", variant: str | None = None) -> Path:
    folder = root / "demo"
    folder.mkdir(parents=True)
    (folder / "campaign.yaml").write_text(
        "id: demo\nname: Demo\nstatus: active\nreview:\n  sources: [Causes of Back Spasms]\n",
        encoding="utf-8",
    )
    variants = ""
    if variant is not None:
        variants = "variants:\n  - id: neck\n    when: {has: neck}\n    file: 01-hello.neck.md\n"
        (folder / "01-hello.neck.md").write_text(
            f"---\nsubject: Hello\nreview:\n  sources: [NICE CKS]\n---\n{variant}",
            encoding="utf-8",
        )
    (folder / "01-hello.md").write_text(
        f"---\nsubject: Hello\ndelay_days: 0\n{front}{variants}---\n{body}", encoding="utf-8"
    )
    return root


def test_check_campaign_names_file_and_line(tmp_path: Path) -> None:
    front = (
        "review:\n  sources: [000_4c042ebdd6a49f31.txt]\n  reviewed_by: Reviewer (placeholder)\n"
    )
    neck = _GOOD_BODY + "\nRest your back.\n"
    root = _campaign(tmp_path / "lib", _GOOD_BODY + "\nA cure.\n", front=front, variant=neck)
    catalog, problems = load_catalog(root)
    assert problems == []
    found = check_campaign(catalog.campaigns["demo"])
    by_code = {(f.code, f.path.rsplit("/", 1)[-1]): f for f in found}
    phrase = by_code["phrase", "01-hello.md"]
    text = (root / "demo" / "01-hello.md").read_text(encoding="utf-8").splitlines()
    assert phrase.line is not None and text[phrase.line - 1] == "A cure."
    assert str(phrase).startswith(f"lib/demo/01-hello.md:{phrase.line}: error: body: 'cure'")
    errors = [f for f in found if f.code == "review" and f.severity == "error"]
    assert len(errors) == 1 and "placeholder" in errors[0].message
    assert any("file name" in f.message for f in found if f.code == "review")
    words = by_code["audience-words", "01-hello.neck.md"]
    assert words.severity == "warning" and "'your back'" in words.message


def test_validate_fails_on_gate_errors_with_file_and_line(sqlite_cli: CLI, tmp_path: Path) -> None:
    root = _campaign(tmp_path / "lib", _GOOD_BODY + "\nWe guarantee it.\n")
    run = sqlite_cli("campaigns", "validate", str(root))
    assert run.code == 1 and "Traceback" not in run.err
    first = run.err.splitlines()[0]
    assert first.startswith("lib/demo/01-hello.md:") and "error: body: 'guarantee'" in first
    assert run.err.strip().endswith(f"1 problem(s) in {root}")


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("If it gets worse, call 999 at once.", "hard-coded-number"),
        ("If you notice a leg getting weaker, please see a clinician.", "sign-tier"),
    ],
)
def test_validate_fails_on_a_hard_coded_number_or_a_wrong_tier(
    sqlite_cli: CLI, tmp_path: Path, line: str, code: str
) -> None:
    """`campaigns validate` (strict or not) refuses a library that writes a number in or sends a
    warning sign to another tier than the table's, naming the file and line."""
    root = _campaign(tmp_path / "lib", _GOOD_BODY + f"\n{line}\n")
    lineno = (root / "demo" / "01-hello.md").read_text(encoding="utf-8").splitlines().index(line)
    for strict in ((), ("--strict",)):
        run = sqlite_cli("campaigns", "validate", *strict, str(root))
        assert run.code == 1 and "Traceback" not in run.err
        assert f"lib/demo/01-hello.md:{lineno + 1}: error: " in run.err, run.err
        assert f"[{code}]" in run.err, run.err


def test_validate_lists_warnings_and_fails_on_them_only_when_strict(
    sqlite_cli: CLI, tmp_path: Path
) -> None:
    root = _campaign(tmp_path / "lib", "Hi {{ first_name }}, welcome.\n")
    run = sqlite_cli("campaigns", "validate", str(root))
    assert run.code == 0, run.err
    assert "warning: " in run.err and "[urgent-care]" in run.err and "[word-count]" in run.err
    assert run.out.startswith("ok: 1 campaign(s), 1 step(s)") and "content warning(s)" in run.out
    strict = sqlite_cli("campaigns", "validate", "--strict", str(root))
    assert strict.code == 1 and "problem(s) in" in strict.err


def test_the_safety_email_lists_every_warning_sign_with_the_clinics_numbers() -> None:
    from templates.system import system_content

    safety = system_content("safety")
    found = [f for f in check_text(safety.subject, "", safety.body, week=1) if "urgent" in f.code]
    assert found == []
    # The "worse" check-in follow-up says where to get help, in the clinic's own numbers.
    followup = system_content("checkin-followup").body
    assert "{{ warning_signs.now }}" in followup  # the table, in the clinic's own numbers
    assert "your back" not in followup.lower()


@pytest.mark.parametrize(
    "text",
    [
        "If it gets worse, call 999 at once.",
        "Ring NHS 111 for advice.",
        "Go to A&E if you are worried.",
        "Ask your GP about pain relief.",
        "In the US, dial 911.",
        "Call 112 from any phone.",
    ],
)
def test_a_hard_coded_number_or_service_fails(text: str) -> None:
    found = check_text("Hello", "", f"Hi.\n\n{text}\n\n{FILLER}", week=2)
    assert codes(found) == ["hard-coded-number"], found
    assert found[0].severity == "error" and found[0].line == 3
    assert "{{ clinic.emergency_number }}" in found[0].message


def test_the_settings_pass_where_the_numbers_fail() -> None:
    text = (
        "Ask your {{ clinic.family_doctor }} about pain relief. For advice, contact "
        "{{ clinic.urgent_advice }}."
    )
    assert check_text("Hello", "", f"Hi.\n\n{text}\n\n{FILLER}", week=2) == []


@pytest.mark.parametrize(
    ("text", "sign", "said"),
    [
        # the review's mixed messages: a weakening leg sent to a routine check, fever to 999
        ("If you notice a leg getting weaker, please see a clinician.", "leg_weakness", "soon"),
        (
            "Call {{ clinic.emergency_number }} if you have a fever or weight loss.",
            "fever_weight_unwell",
            "emergency",
        ),
        (
            "Bladder or bowel trouble: contact {{ clinic.urgent_advice }} today.",
            "bladder_bowel",
            "urgent",
        ),
        (
            "**Contact {{ clinic.urgent_advice }} the same day if you have:**\n\n"
            "- a fall from a height or down stairs",
            "major_accident",
            "urgent",
        ),
    ],
)
def test_a_sign_named_with_another_tier_fails(text: str, sign: str, said: str) -> None:
    found = check_text("Hello", "", f"Hi.\n\n{text}\n\n{FILLER}", week=2)
    assert codes(found) == ["sign-tier"], found
    assert found[0].severity == "error"
    assert f"'{sign}'" in found[0].message and f"the {said} tier" in found[0].message


def test_a_sign_with_its_own_tier_passes() -> None:
    text = (
        "If a leg gets weaker, call {{ clinic.emergency_number }} now. A fever needs "
        "{{ clinic.urgent_advice }} or your {{ clinic.family_doctor }} the same day. "
        "Leg pain on walking that eases when you stand still: see your "
        "{{ clinic.family_doctor }}.\n\n{{ warning_signs.all }}"
    )
    found = check_text("Hello", "", f"Hi.\n\n{text}\n\n{FILLER}", week=2)
    assert codes(found) == ["word-count"]  # long, but every sign is where the table puts it


def test_every_library_and_system_email_keeps_the_tables_tiers() -> None:
    from templates.system import SYSTEM_EMAILS, system_content

    for name in SYSTEM_EMAILS:
        content = system_content(name)
        found = [
            f
            for f in check_text(content.subject, content.preheader, content.body, week=2)
            if f.code in ("sign-tier", "hard-coded-number")
        ]
        assert found == [], (name, found)
