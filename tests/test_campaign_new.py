"""A new campaign's files (campaigns.authoring.new_campaign) load like any library campaign, and
its id is checked the way the loader checks it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from campaigns import authoring
from campaigns.definitions import CampaignMeta
from campaigns.loader import DEMO_CLINIC
from campaigns.versions import parse
from templates import Renderer


def test_a_new_campaign_loads_with_its_title_audience_and_one_step() -> None:
    audience = {"all": [{"not": {"in_group": "red_flags"}}, {"has": "desk_posture"}]}
    files, name = authoring.new_campaign("desk-guide", "  Desk   guide ", audience, "Your desk")
    assert name == "01-your-desk.md" and set(files) == {"campaign.yaml", name}
    campaign, problems = parse("desk-guide", files, Renderer(DEMO_CLINIC))
    assert campaign is not None, problems
    assert campaign.meta.name == "Desk guide" and campaign.meta.status == "active"
    assert campaign.meta.audience.model_dump(by_alias=True, exclude_none=True) == audience
    (step,) = campaign.steps
    assert step.default.subject == "Your desk" and step.delay_days == 0


@pytest.mark.parametrize("bad", ["", "Desk", "-desk", "desk guide", "d" * 64, "désk"])
def test_an_id_the_loader_refuses_is_refused_in_words(bad: str) -> None:
    with pytest.raises(authoring.AuthoringError, match="lower-case letters, digits and hyphens"):
        authoring.check_campaign_id(bad)
    with pytest.raises(ValidationError):
        CampaignMeta(id=bad, name="x")  # the loader's own check agrees


def test_the_id_offered_from_a_title_is_one_the_loader_accepts() -> None:
    offered = authoring.campaign_id_of("Desk Workers' Guide: Part 2!")
    assert offered == "desk-workers-guide-part-2"
    assert authoring.check_campaign_id(offered) == offered


def test_a_title_is_needed() -> None:
    with pytest.raises(authoring.AuthoringError, match="title"):
        authoring.new_campaign("desk", "   ", None, "First")
