"""A real path for every kind of patient: each group the symptom vocabulary names gets at least
three emails written for it, every path runs at least eight weeks and opens with the urgent
warning signs, and the variant that wins for a reader who ticks several groups is the one the
documented precedence names."""

from __future__ import annotations

from itertools import combinations

import pytest

from campaigns import BUNDLED_LIBRARY
from campaigns.definitions import Campaign
from campaigns.gate import check_text
from campaigns.journey import journey
from campaigns.loader import load_catalog
from campaigns.paths import PATHS, PRECEDENCE, own_emails
from subscribers.segments import Facts
from subscribers.symptoms import SYMPTOMS


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    catalog, problems = load_catalog(BUNDLED_LIBRARY)
    assert problems == []
    found = catalog.get("spasm-education")
    assert found is not None
    return found


def test_every_group_in_the_vocabulary_has_a_path() -> None:
    groups = {"pattern", "spreading", "diagnosis"}
    named = {s.code for s in SYMPTOMS if s.group in groups} | {
        "mid_back",
        "neck",
        "desk_posture",
        "sports_injury",
        "after_accident",
    }
    covered = {c for p in PATHS for c in p.codes}
    assert named <= covered, named - covered


@pytest.mark.parametrize("path", PATHS, ids=[p.id for p in PATHS])
def test_each_group_has_three_emails_of_its_own(campaign: Campaign, path: object) -> None:
    from campaigns.paths import Path

    assert isinstance(path, Path)
    own = own_emails(campaign, path)
    assert len(own) >= 3, own
    for code in path.codes:
        # Each code of the group alone reaches at least three of them.
        reached = [
            v.file
            for s in campaign.steps
            for v in s.variants
            if v.id == path.id and v.when is not None and v.when.matches(Facts(frozenset({code})))
        ]
        assert len(reached) >= 3, (code, reached)
    trip = journey(campaign, path.symptoms)
    assert len(trip.emails) >= 8
    assert [e.week for e in trip.emails] == list(range(1, len(trip.emails) + 1))
    assert sum(e.variant == path.id for e in trip.emails) >= 3


def test_variants_follow_the_documented_precedence(campaign: Campaign) -> None:
    for step in campaign.steps:
        ids = [v.id for v in step.variants]
        assert all(i in PRECEDENCE for i in ids), (step.id, ids)
        assert ids == sorted(ids, key=PRECEDENCE.index), (step.id, ids)


CODES = sorted({c for p in PATHS for c in p.codes})


@pytest.mark.parametrize("pair", list(combinations(CODES, 2)), ids="+".join)
def test_any_mix_of_groups_opens_with_the_warning_signs(
    campaign: Campaign, pair: tuple[str, str]
) -> None:
    trip = journey(campaign, frozenset(pair))
    assert len(trip.emails) >= 8
    first = trip.emails[0]
    assert first.week == 1
    variant = campaign.step(first.step).variant(first.variant)
    findings = check_text(variant.subject, variant.preheader, variant.body, week=1)
    assert findings == [], findings
    assert "{{ warning_signs.now }}" in variant.body  # the table, in the clinic's numbers
