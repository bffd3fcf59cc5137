"""YAML that staff write (campaign settings, step front matter), read the one way.

PyYAML's own parser is pure Python; libyaml's, which PyYAML's wheels bundle, gives the same
values about ten times faster, and every process reads every campaign's front matter when it
loads the library. A text libyaml refuses is read again by PyYAML's parser, so a mistake is
reported with the same words and line as it always was.
"""

from __future__ import annotations

from typing import Any

import yaml

_FAST: Any = getattr(yaml, "CSafeLoader", None)


def safe_load(text: str) -> Any:
    """What :func:`yaml.safe_load` answers for ``text`` (it raises the same errors)."""
    if _FAST is not None:
        try:
            return yaml.load(text, Loader=_FAST)  # noqa: S506 - the safe loader, in C
        except yaml.YAMLError:
            pass  # PyYAML's own parser says what is wrong, as it always has
    return yaml.safe_load(text)
