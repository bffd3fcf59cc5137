"""`clinicmail campaigns journey`: the week-by-week emails for a set of symptoms."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.journey import NO_ENGAGEMENT, Engagement, journey
from campaigns.loader import load_catalog
from subscribers.symptoms import SYMPTOMS
from tests.support.cli import CLI, write_csv

SCIATICA = "lower_back,sciatica"
DESK_NECK = "neck,desk_posture"


def _journey(cli: CLI, symptoms: str) -> dict[str, object]:
    run = cli("campaigns", "journey", "spasm-education", "--symptoms", symptoms, "--json")
    assert run.code == 0, run.err
    data: dict[str, object] = run.json()
    return data


def test_sciatica_and_desk_neck_journeys_differ(sqlite_cli: CLI) -> None:
    sciatica = _journey(sqlite_cli, SCIATICA)["emails"]
    neck = _journey(sqlite_cli, DESK_NECK)["emails"]
    assert isinstance(sciatica, list) and isinstance(neck, list)
    assert len(sciatica) >= 8 and len(neck) >= 8  # the README: at least eight weekly emails
    assert [e["week"] for e in sciatica] == list(range(1, len(sciatica) + 1))
    by_week_s = {e["week"]: (e["step"], e["variant"], e["subject"]) for e in sciatica}
    by_week_n = {e["week"]: (e["step"], e["variant"], e["subject"]) for e in neck}
    differ = [w for w in by_week_s if by_week_s[w] != by_week_n.get(w)]
    assert len(differ) >= 3, differ
    assert {e["variant"] for e in sciatica} == {"sciatica", "low-back", "default"}
    assert {e["variant"] for e in neck} == {"neck", "default"}
    # Every path starts with the urgent warning signs in week 1.
    assert sciatica[0]["subject"] == "Welcome: what to expect, and when to act fast"
    assert neck[0]["subject"] == "Welcome, and when to get help straight away"
    # Variants of one topic may share a subject: subjects name no condition, so an inbox
    # preview reveals nothing about which path a reader is on.


def test_text_output_is_a_timeline(sqlite_cli: CLI) -> None:
    run = sqlite_cli("campaigns", "journey", "spasm-education", "--symptoms", DESK_NECK)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == "spasm-education for desk_posture, neck: 10 emails over 10 weeks"
    assert lines[1].split() == ["week", "day", "step", "variant", "subject"]
    assert lines[2].split()[:4] == ["1", "0", "why-your-back-locks-up", "neck"]
    assert lines[2].endswith("Welcome, and when to get help straight away")


def test_red_flag_persona_gets_no_journey(sqlite_cli: CLI) -> None:
    run = sqlite_cli(
        "campaigns", "journey", "spasm-education", "--symptoms", "lower_back,red_flag_leg_weakness"
    )
    assert run.code == 0, run.err
    assert "no journey" in run.out
    assert "red-flag" in run.out and "safety email" in run.out
    data = _journey(sqlite_cli, "lower_back,red_flag_leg_weakness")
    assert data["excluded"] == "red_flag"
    assert data["emails"] == []


def test_user_errors_are_one_line(sqlite_cli: CLI) -> None:
    run = sqlite_cli("campaigns", "journey", "spasm-education", "--symptoms", "sciatic")
    assert run.code == 1
    assert run.err.strip() == "clinicmail: unknown symptom code: sciatic"
    run = sqlite_cli("campaigns", "journey", "nope", "--symptoms", "neck")
    assert run.code == 1
    assert run.err.strip().startswith("clinicmail: no campaign 'nope'; known: spasm-education")
    run = sqlite_cli("campaigns", "journey", "--help")
    assert run.code == 0 and "--symptoms" in run.out


def _write(folder: Path, name: str, front: str, body: str = "Hi {{ first_name }}.\n") -> None:
    (folder / name).write_text(f"---\n{front}---\n{body}", encoding="utf-8")


def test_when_rules_delays_and_the_seven_day_cap(sqlite_cli: CLI, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    folder = root / "rules"
    folder.mkdir(parents=True)
    (folder / "campaign.yaml").write_text(
        "id: rules\nname: Rules\nstatus: active\naudience: {has: lower_back}\n", encoding="utf-8"
    )
    _write(folder, "01-start.md", 'subject: "Start"\ndelay_days: 0\n')
    # Only for sciatica; 2 days later, but the cap holds it to day 7.
    _write(folder, "02-leg.md", 'subject: "Leg"\ndelay_days: 2\nwhen: {has: sciatica}\n')
    _write(folder, "03-later.md", 'subject: "Later"\ndelay_days: 14\n')
    _write(
        folder,
        "04-desk.md",
        'subject: "Desk"\ndelay_days: 7\nvariants:\n'
        "  - {id: sit, when: {has: desk_posture}, file: 04-desk.sit.md}\n",
    )
    _write(folder, "04-desk.sit.md", 'subject: "Desk, sitting"\n')
    catalog, problems = load_catalog(root)
    assert problems == []
    campaign = catalog.get("rules")
    assert campaign is not None

    legs = journey(campaign, frozenset({"lower_back", "sciatica"}))
    assert [(e.day, e.week, e.step, e.variant) for e in legs.emails] == [
        (0, 1, "start", "default"),
        (7, 2, "leg", "default"),  # delay 2, capped to 7
        (21, 4, "later", "default"),
        (28, 5, "desk", "default"),
    ]
    desk = journey(campaign, frozenset({"lower_back", "desk_posture"}))
    # "leg" is skipped: "later" goes out when "leg" would have (day 2 → capped to 7), then desk.
    assert [(e.day, e.step, e.variant) for e in desk.emails] == [
        (0, "start", "default"),
        (7, "later", "default"),
        (14, "desk", "sit"),
    ]
    outside = journey(campaign, frozenset({"neck"}))
    assert outside.excluded == "audience" and outside.emails == ()

    sqlite_cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(root))
    run = sqlite_cli("campaigns", "journey", "rules", "--symptoms", "neck")
    assert run.code == 0
    assert "outside the campaign's audience" in run.out


def test_a_longer_cadence_spaces_the_journey() -> None:
    """``cadence_days`` is read through the cadence rule: it can lengthen the gap, never shorten
    it below the weekly cap."""
    campaign = load_catalog(BUNDLED_LIBRARY)[0].get("spasm-education")
    assert campaign is not None
    slow = campaign.model_copy(
        update={"meta": campaign.meta.model_copy(update={"cadence_days": 14})}
    )
    days = [e.day for e in journey(slow, frozenset({"lower_back"})).emails]
    assert len(days) >= 8
    assert all(b - a >= 14 for a, b in itertools.pairwise(days))
    weekly = [e.day for e in journey(campaign, frozenset({"lower_back"})).emails]
    assert min(b - a for a, b in itertools.pairwise(weekly)) == 7


@pytest.mark.slow
def test_journey_matches_what_the_scheduler_sends(sqlite_cli: CLI, tmp_path: Path) -> None:
    """Drive the real tick: each email goes out on the journey's day, not the day before."""
    assert sqlite_cli("init").code == 0
    csv = write_csv(
        tmp_path / "people.csv",
        ["ana@example.com,Ana,lower_back;sciatica,Europe/London,yes,2026-01-01T09:00:00Z,test"],
    )
    assert sqlite_cli("subscribers", "import", str(csv)).code == 0
    expected = _journey(sqlite_cli, SCIATICA)["emails"]
    assert isinstance(expected, list)
    start = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    start += timedelta(days=1)

    def sent_on(day: int) -> int:
        run = sqlite_cli("tick", "--now", (start + timedelta(days=day)).isoformat(), "--json")
        assert run.code == 0, run.err
        sent: int = run.json()["sent"]
        return sent

    for email in expected:
        if email["day"] > 0:
            assert sent_on(email["day"] - 1) == 0, email
        assert sent_on(email["day"]) == 1, email
    assert sent_on(expected[-1]["day"] + 7) == 0
    run = sqlite_cli("outbox", "list", "--limit", "100", "--json")
    assert run.code == 0, run.err
    assert [m["subject"] for m in reversed(run.json())] == [e["subject"] for e in expected]


def test_bundled_journeys_have_at_least_eight_emails() -> None:
    catalog, _ = load_catalog(BUNDLED_LIBRARY)
    campaign = catalog.get("spasm-education")
    assert campaign is not None
    for codes in ({"lower_back"}, {"neck"}, {"lower_back", "sciatica"}, {"mid_back"}, set()):
        assert len(journey(campaign, frozenset(codes)).emails) >= 8, codes


# -- every journey is safe ------------------------------------------------------------------------
# Each symptom mix of up to three codes, with each check-in answer (and with and without a click
# through the strength email), walked through the bundled series.
EDUCATIONAL = tuple(s.code for s in SYMPTOMS if s.group != "red_flags")
MIXES = [frozenset(c) for n in (1, 2, 3) for c in itertools.combinations(EDUCATIONAL, n)]
STRENGTH = ("spasm-education", "build-strength-step-by-step")
BEHAVIOURS = [
    Engagement(checkin=answer, clicked=clicked)
    for answer in (None, "better", "same", "worse")
    for clicked in (frozenset(), frozenset({STRENGTH}))
]


def _regions(codes: frozenset[str]) -> set[str]:
    """The body regions a reader's codes place them in."""
    regions = set()
    if codes & {"neck", "arm_symptoms"} or (
        "desk_posture" in codes and not codes & {"lower_back", "mid_back"}
    ):
        regions.add("neck")
    if "mid_back" in codes:
        regions.add("mid")
    if codes & {"lower_back", "sciatica"} or not codes & {"neck", "arm_symptoms", "mid_back"}:
        regions.add("low")
    return regions


def _written_for_someone_else(variant: str, codes: frozenset[str]) -> str | None:
    regions = _regions(codes)
    if variant in ("neck", "arm") and "neck" not in regions:
        return "a neck email for a reader without neck or arm symptoms"
    if variant == "mid-back" and "mid" not in regions:
        return "a middle-back email for a reader without middle-back pain"
    if variant == "stenosis" and (regions != {"low"}):
        return "low-back stenosis advice (leg ache on walking is expected) where the narrowing may press on the cord"
    if variant == "low-back" and "lower_back" not in codes:
        return "a low-back email for a reader who did not tick the lower back"
    if variant == "sciatica" and "sciatica" not in codes:
        return "a sciatica email for a reader without leg symptoms"
    return None


def test_every_mix_and_answer_gets_a_safe_journey() -> None:
    from campaigns.gate import check_text

    campaign = load_catalog(BUNDLED_LIBRARY)[0].get("spasm-education")
    assert campaign is not None
    contradictions: dict[str, list[str]] = {}
    for step in campaign.steps:
        for v in (step.default, *step.variants):
            found = check_text(v.subject, v.preheader, v.body, week=2)
            contradictions[v.file] = [
                str(f) for f in found if f.code in ("sign-tier", "hard-coded-number")
            ]
    walked = 0
    for codes in MIXES:
        for behaviour in BEHAVIOURS:
            trip = journey(campaign, codes, behaviour)
            label = f"{sorted(codes)} {behaviour.checkin} {bool(behaviour.clicked)}"
            assert len(trip.emails) >= 8, label
            first = campaign.step(trip.emails[0].step).variant(trip.emails[0].variant)
            assert trip.emails[0].week == 1, label
            # the whole table in the clinic's numbers: both paths' signs for an arm-and-leg mix
            assert "{{ warning_signs.now }}" in first.body, label
            for e in trip.emails:
                assert contradictions[e.file] == [], (label, contradictions[e.file])
                wrong = _written_for_someone_else(e.variant, codes)
                assert wrong is None, (label, e.file, wrong)
                if behaviour.checkin == "worse":
                    assert e.variant != "strength", (label, "the cheerful finale after 'worse'")
            walked += 1
    assert walked == len(MIXES) * len(BEHAVIOURS) > 5000


def test_the_risky_mixes_the_review_named() -> None:
    campaign = load_catalog(BUNDLED_LIBRARY)[0].get("spasm-education")
    assert campaign is not None

    def variants(codes: set[str], behaviour: Engagement = NO_ENGAGEMENT) -> list[str]:
        return [e.variant for e in journey(campaign, frozenset(codes), behaviour).emails]

    assert "stenosis" not in variants({"neck", "stenosis"})  # cervical: the neck path
    assert "stenosis" in variants({"lower_back", "stenosis"})
    assert "neck" not in variants({"lower_back", "desk_posture"})  # low-back desk workers
    worse = Engagement(checkin="worse", clicked=frozenset({STRENGTH}))
    assert variants({"lower_back", "sciatica"}, worse)[-1] == "sciatica"
    clicked = Engagement(clicked=frozenset({STRENGTH}))
    assert variants({"lower_back", "sciatica"}, clicked)[-1] == "sciatica"  # below sciatica
    assert variants({"lower_back"}, clicked)[-1] == "strength"


def test_one_worse_anywhere_rules_out_the_strength_finale() -> None:
    """The week-10 choice itself, from a person's facts: a click through the strength email
    earns the strength finale only when no check-in on record said "worse", even if the latest
    one said "better"; and it stays below the sciatica and arm finales."""
    from subscribers.activity import CHECKIN, CLICK, Activity
    from subscribers.segments import Facts

    campaign = load_catalog(BUNDLED_LIBRARY)[0].get("spasm-education")
    assert campaign is not None
    finale = campaign.steps[-1]
    clicked = frozenset({(CLICK, *STRENGTH)})

    def chosen(codes: set[str], answers: dict[str, str], latest: str | None) -> str:
        done = clicked | {(CHECKIN, "spasm-education", step) for step in answers}
        facts = Facts(
            symptoms=frozenset(codes),
            activity=Activity(done=done, last_checkin=latest, checkins=frozenset(answers.values())),
        )
        return finale.variant_for(facts).id

    low = {"lower_back"}
    assert chosen(low, {}, None) == "strength"
    assert chosen(low, {"pacing": "better"}, "better") == "strength"
    # worse in week 4, better in week 8: the latest is better, the finale is not the cheerful one
    assert chosen(low, {"pacing": "worse", "work": "better"}, "better") != "strength"
    assert chosen(low, {"pacing": "same", "work": "worse"}, "worse") != "strength"
    assert chosen({"lower_back", "sciatica"}, {}, None) == "sciatica"
    assert chosen({"neck", "arm_symptoms"}, {}, None) == "arm"


def _signs_to_act_on(body: str) -> set[str]:
    """The emergency and same-day signs an email lists: the tiers it includes from the table,
    and the signs it names in a sentence that sends the reader to a tier."""
    from campaigns.gate import _sentences, _tiers_named
    from templates import warning_signs

    table = warning_signs.table()
    included: dict[str, tuple[warning_signs.Tier, ...]] = {
        "now": ("emergency", "urgent"),
        "all": ("emergency", "urgent"),
        "emergency": ("emergency",),
        "urgent": ("urgent",),
    }
    found = {
        s.id
        for field, tiers in included.items()
        if "{{ warning_signs." + field + " }}" in body
        for tier in tiers
        for s in table.of(tier)
    }
    for _, sentence in _sentences(body):
        if _tiers_named(sentence):
            found |= {s.id for s in table.signs if s.named_in(sentence) and s.tier != "soon"}
    return found


def test_arm_and_leg_mixes_keep_both_paths_signs() -> None:
    """A reader with arm (or neck) and leg symptoms follows the sciatica path; after week 1 it
    still tells them every emergency and same-day sign that either path alone would have."""
    from subscribers.symptoms import ARM_CODES, LEG_CODES, arm_and_leg

    campaign = load_catalog(BUNDLED_LIBRARY)[0].get("spasm-education")
    assert campaign is not None

    def after_week_1(codes: frozenset[str]) -> set[str]:
        out: set[str] = set()
        for e in journey(campaign, codes).emails[1:]:
            out |= _signs_to_act_on(campaign.step(e.step).variant(e.variant).body)
        return out

    mixes = [m for m in MIXES if arm_and_leg(m)]
    assert frozenset({"arm_symptoms", "sciatica"}) in mixes
    for codes in mixes:
        wanted = after_week_1(codes - LEG_CODES) | after_week_1(codes - ARM_CODES)
        missing = wanted - after_week_1(codes)
        assert not missing, (sorted(codes), sorted(missing))
