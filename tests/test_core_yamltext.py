"""Staff YAML is read by libyaml when PyYAML has it, with PyYAML's own values and messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core import yamltext
from templates.system import split_front_matter

LIBRARY = Path(__file__).resolve().parents[1] / "campaigns" / "library"


def test_every_library_file_reads_as_pyyaml_reads_it() -> None:
    texts = [p.read_text(encoding="utf-8") for p in sorted(LIBRARY.glob("*/campaign.yaml"))]
    texts += [
        split_front_matter(p.read_text(encoding="utf-8"))[0] for p in sorted(LIBRARY.glob("*/*.md"))
    ]
    assert len(texts) > 50
    for text in texts:
        assert yamltext.safe_load(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text",
    [
        "name: Back care: week one\n",
        "tags: [a, b\n",
        "a: 1\n a: 2\n",
        "x: !!python/object:os.system {}\n",
    ],
)
def test_a_mistake_is_reported_as_pyyaml_reports_it(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as ours:
        yamltext.safe_load(text)
    with pytest.raises(yaml.YAMLError) as theirs:
        yaml.safe_load(text)
    assert str(ours.value) == str(theirs.value)


def test_values_yaml_1_1_gives_are_kept() -> None:
    # The resolvers are PyYAML's, whichever parser reads the text.
    text = "a: yes\nb: 2026-12-07\nc: 010\n"
    assert yamltext.safe_load(text) == yaml.safe_load(text)
