"""Changes to a campaign version's files, as pure functions over ``{file name: text}``.

The console edits content through these (the folder format stays the one truth about what a
step is): a step file ``NN-slug.md`` with front matter and a Markdown body; a variant file
``NN-slug.VARIANT.md`` listed under the step's ``variants``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from campaigns.definitions import ID_PATTERN, STEP_FILE
from core import yamltext
from core.errors import InputError
from templates.system import split_front_matter

SLUG = re.compile(r"[^a-z0-9]+")


class AuthoringError(InputError, ValueError):
    """The change cannot be made; the message says why in plain words."""


@dataclass(frozen=True)
class Parts:
    """A step or variant file as the editor shows it."""

    subject: str
    preheader: str
    body: str
    settings: str  # the rest of the front matter, as YAML (delay, rules, variants …)


def split(text: str) -> Parts:
    """Split a file into the editor's fields; raises :class:`AuthoringError`."""
    try:
        fm, body, _ = split_front_matter(text)
        data = yamltext.safe_load(fm) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise AuthoringError(f"the file's front matter cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise AuthoringError("the file's front matter is not a mapping of settings")
    subject = str(data.pop("subject", ""))
    preheader = str(data.pop("preheader", "") or "")
    settings = yaml.safe_dump(data, sort_keys=False, allow_unicode=True) if data else ""
    return Parts(subject=subject, preheader=preheader, body=body, settings=settings)


def compose(parts: Parts) -> str:
    """The file text for the editor's fields. Settings that are not valid YAML are kept as
    written so the validator can point at them."""
    head = yaml.safe_dump(
        {"subject": parts.subject, "preheader": parts.preheader},
        sort_keys=False,
        allow_unicode=True,
        width=1000,
    )
    settings = parts.settings.replace("\r\n", "\n").strip("\n")
    body = parts.body.replace("\r\n", "\n")
    return f"---\n{head}{settings + chr(10) if settings else ''}---\n{body}"


def steps(files: Mapping[str, str]) -> list[str]:
    """Step file names in order."""
    return sorted(n for n in files if STEP_FILE.match(n))


def variant_files(files: Mapping[str, str], step_file: str) -> list[str]:
    """The variant files a step lists (in its order)."""
    try:
        data = yamltext.safe_load(split_front_matter(files[step_file])[0]) or {}
    except (ValueError, yaml.YAMLError, KeyError):
        return []
    refs = data.get("variants") if isinstance(data, dict) else None
    return [str(r["file"]) for r in refs or [] if isinstance(r, dict) and "file" in r]


def _number(name: str) -> tuple[int, str]:
    m = STEP_FILE.match(name)
    if not m:
        raise AuthoringError(f"{name} is not a step file")
    return int(m.group(1)), m.group(2)


def slug_of(title: str) -> str:
    slug = SLUG.sub("-", title.lower()).strip("-")[:50].strip("-")
    if not slug:
        raise AuthoringError("give the step a title with some letters or digits")
    return slug


def campaign_id_of(title: str) -> str:
    """The id a campaign titled ``title`` is offered (the console shows it, editable)."""
    return SLUG.sub("-", title.lower()).strip("-")[:63].strip("-")


def check_campaign_id(campaign_id: str) -> str:
    """The id as the loader accepts it (``CampaignMeta.id``); raises :class:`AuthoringError`."""
    if not re.fullmatch(ID_PATTERN, campaign_id):
        raise AuthoringError(
            "a campaign id is lower-case letters, digits and hyphens, starting with a letter or "
            "digit, at most 63 characters (for example back-care-basics)"
        )
    return campaign_id


def new_campaign(
    campaign_id: str, title: str, audience: dict[str, Any] | None, first_step: str
) -> tuple[dict[str, str], str]:
    """The files of a new campaign: its ``campaign.yaml`` (title, audience) and one starter
    step; returns them and the step's file name. ``audience`` is segment-rule data (None:
    everyone; red-flag subscribers are excluded by the system anyway)."""
    check_campaign_id(campaign_id)
    name = " ".join(title.split())[:150]
    if not name:
        raise AuthoringError("give the campaign a title")
    meta: dict[str, Any] = {"id": campaign_id, "name": name, "status": "active"}
    if audience:
        meta["audience"] = audience
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return add_step({"campaign.yaml": head}, first_step, delay_days=0)


def add_step(
    files: Mapping[str, str], title: str, *, delay_days: int = 7
) -> tuple[dict[str, str], str]:
    """Append a step with a starter body; returns the new files and the step's file name."""
    slug = slug_of(title)
    existing = steps(files)
    if any(_number(n)[1] == slug for n in existing):
        raise AuthoringError(f"there is already a step called {slug!r}")
    number = (_number(existing[-1])[0] + 1) if existing else 1
    name = f"{number:02d}-{slug}.md"
    out = dict(files)
    out[name] = compose(
        Parts(
            subject=title.strip()[:150],
            preheader="",
            body="Hello {{ first_name }},\n\nWrite this week's email here.\n",
            settings=f"delay_days: {delay_days}\n",
        )
    )
    return out, name


def move_step(files: Mapping[str, str], name: str, direction: int) -> dict[str, str]:
    """Swap a step with its neighbour (``direction`` -1 earlier, +1 later) by swapping their
    numbers; slugs, and so the ids the ledger knows, stay the same."""
    order = steps(files)
    if name not in order:
        raise AuthoringError(f"there is no step {name}")
    i = order.index(name)
    j = i + direction
    if not 0 <= j < len(order):
        return dict(files)
    other = order[j]
    (n1, s1), (n2, s2) = _number(name), _number(other)
    out = {k: v for k, v in files.items() if k not in (name, other)}
    out[f"{n2:02d}-{s1}.md"] = files[name]
    out[f"{n1:02d}-{s2}.md"] = files[other]
    return out


def retire_step(files: Mapping[str, str], name: str) -> dict[str, str]:
    """Remove a step and its variant files from this version (earlier versions keep it)."""
    if name not in steps(files):
        raise AuthoringError(f"there is no step {name}")
    if len(steps(files)) == 1:
        raise AuthoringError("a campaign needs at least one step")
    gone = {name, *variant_files(files, name)}
    return {k: v for k, v in files.items() if k not in gone}


def add_variant(
    files: Mapping[str, str], step_file: str, variant_id: str, when: dict[str, Any]
) -> tuple[dict[str, str], str]:
    """Add a variant of a step for people matching ``when`` (a segment rule), starting as a copy
    of the step's text; returns the new files and the variant's file name."""
    if step_file not in steps(files):
        raise AuthoringError(f"there is no step {step_file}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,30}", variant_id) or variant_id == "default":
        raise AuthoringError(
            "a variant name is lower-case letters, digits, - or _ (and not 'default')"
        )
    name = step_file.removesuffix(".md") + f".{variant_id}.md"
    if name in files:
        raise AuthoringError(f"this step already has a variant called {variant_id!r}")
    parts = split(files[step_file])
    data = yamltext.safe_load(parts.settings) or {}
    variants = list(data.get("variants") or [])
    variants.append({"id": variant_id, "when": when, "file": name})
    data["variants"] = variants
    out = dict(files)
    out[step_file] = compose(
        Parts(
            parts.subject,
            parts.preheader,
            parts.body,
            yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        )
    )
    out[name] = compose(Parts(parts.subject, parts.preheader, parts.body, ""))
    return out, name
