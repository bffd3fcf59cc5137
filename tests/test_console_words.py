"""Rules, delays and step names as the console says them: sentences a clinic's staff read
without knowing the YAML (console/words.py), and the settings form's round trip with the YAML
(console/rule_builder.py)."""

from __future__ import annotations

import pytest
import yaml

from console import rule_builder
from console.words import delay, file_title, rule
from subscribers.segments import parse_rule


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (None, "everyone"),
        ({"all": []}, "everyone"),
        ({"not": {"in_group": "red_flags"}}, "people without any warning sign"),
        ({"has": "after_accident"}, "people who have had an accident"),
        ({"not": {"has": "after_accident"}}, "people who have not had an accident"),
        ({"has": "sciatica"}, "people with pain into the leg"),
        ({"has_any": ["neck", "mid_back"]}, "people with neck pain or middle back pain"),
        ({"has_all": ["neck", "arm_symptoms"]}, "people with both neck pain and pain into the arm"),
        (
            {"all": [{"has": "after_accident"}, {"not": {"has": "chronic_pain"}}]},
            "people who have had an accident and without long-lasting pain",
        ),
        (
            {"any": [{"has": "sciatica"}, {"checkin": "worse"}]},
            "people either with pain into the leg or whose latest check-in answer was “Worse”",
        ),
        ({"checkin_ever": "worse"}, "people who once answered “Worse” at a check-in"),
        (
            {"not": {"opened": "spasm-education/the-first-few-days"}},
            "people who did not open “The first few days”",
        ),
        (
            {"clicked": "spasm-education"},
            "people who clicked a link in any email of “Spasm education”",
        ),
        ({"subscribed_days_gte": 30}, "people who joined at least 30 days ago"),
        ({"timezone": "Europe/London"}, "people in the Europe/London time zone"),
    ],
)
def test_rules_read_as_sentences(data: object, words: str) -> None:
    assert rule(parse_rule(data) if data is not None else None) == words
    assert rule(data) == words  # the YAML data reads the same


def test_engagement_names_the_step_by_its_title_when_known() -> None:
    titles = {"c/02-x": "ignored", "c/welcome": "Welcome to the clinic"}
    assert rule({"opened": "c/welcome"}, titles) == "people who opened “Welcome to the clinic”"


@pytest.mark.parametrize(
    ("data", "absent"), [({"not": {"in_group": "red_flags"}}, "not ("), ({"has": "x"}, " has ")]
)
def test_no_machine_words(data: dict[str, object], absent: str) -> None:
    assert absent not in rule(data)


def test_delays_in_words() -> None:
    assert delay(0, True) == "at the first send time after they confirm"
    assert delay(1, True) == "1 day after they confirm"
    assert delay(14, False) == "14 days after the one before"
    assert delay(0, False).startswith("straight after the one before")


def test_file_names_become_titles() -> None:
    assert file_title("02-the-first-few-days.md") == "The first few days"
    assert file_title("spasm/02-the-first-few-days.accident.md") == "The first few days"
    assert file_title("campaign.yaml") == "Campaign settings"


SETTINGS = """delay_days: 7  # a comment the form keeps when nothing changes
cta: book
when:
  all:
  - has: sciatica
  - not: {in_group: red_flags}
variants: []
"""


def test_the_form_shows_the_yaml_and_an_untouched_form_changes_nothing() -> None:
    shown = rule_builder.settings_builder(SETTINGS)
    assert shown is not None and shown.representable and shown.delay_days == "7"
    assert shown.conditions == [
        rule_builder.Condition("has:sciatica"),
        rule_builder.Condition("in_group:red_flags", negate=True),
    ]
    same, errors = rule_builder.merge(SETTINGS, shown.snapshot(), shown)
    assert same == SETTINGS and not errors


def test_the_form_writes_only_what_changed_and_keeps_the_rest() -> None:
    shown = rule_builder.settings_builder(SETTINGS)
    assert shown is not None
    posted = rule_builder.form_builder(
        "any",
        ["checkin:worse", "", "has:neck"],
        ["not", "", ""],
        advanced=False,
        delay_days="10",
        checkin=True,
    )
    # the advanced view changed the call to action in the same save: kept
    typed = SETTINGS.replace("cta: book", "cta: read")
    text, errors = rule_builder.merge(typed, shown.snapshot(), posted)
    data = yaml.safe_load(text)
    assert not errors
    assert data["cta"] == "read" and data["delay_days"] == 10 and data["checkin"] is True
    assert data["when"] == {"any": [{"not": {"checkin": "worse"}}, {"has": "neck"}]}


def test_a_rule_the_form_cannot_show_is_never_rewritten() -> None:
    nested = "when:\n  any:\n  - all: [{has: neck}, {has: sciatica}]\n  - timezone: UTC\n"
    shown = rule_builder.settings_builder(nested)
    assert shown is not None and not shown.representable
    posted = rule_builder.form_builder("all", [], [], advanced=True, delay_days="3", checkin=False)
    text, errors = rule_builder.merge(nested, shown.snapshot(), posted)
    assert not errors
    data = yaml.safe_load(text)
    assert data["delay_days"] == 3
    assert data["when"] == yaml.safe_load(nested)["when"]


@pytest.mark.parametrize("typed", ["two weeks", "-1", "400", ""])
def test_a_bad_delay_is_refused_with_a_reason_and_nothing_written(typed: str) -> None:
    shown = rule_builder.settings_builder(SETTINGS)
    assert shown is not None
    posted = rule_builder.form_builder(
        "all", ["has:sciatica"], [""], advanced=False, delay_days=typed, checkin=False
    )
    text, errors = rule_builder.merge(SETTINGS, shown.snapshot(), posted)
    assert text == SETTINGS
    assert errors["delay_days"] == "Write a whole number of days from 0 to 365."


def test_an_unknown_choice_is_refused_beside_the_rule() -> None:
    shown = rule_builder.settings_builder("delay_days: 7\n")
    assert shown is not None
    posted = rule_builder.form_builder(
        "all", ["has:no_such_code"], [""], advanced=False, delay_days="7", checkin=False
    )
    _, errors = rule_builder.merge("delay_days: 7\n", shown.snapshot(), posted)
    assert "choose it again" in errors["rule"]


def test_no_conditions_means_everyone_and_removes_the_rule() -> None:
    shown = rule_builder.settings_builder(SETTINGS)
    assert shown is not None
    posted = rule_builder.form_builder(
        "all", ["", ""], ["", ""], advanced=False, delay_days="7", checkin=False
    )
    text, _ = rule_builder.merge(SETTINGS, shown.snapshot(), posted)
    assert "when" not in yaml.safe_load(text)
