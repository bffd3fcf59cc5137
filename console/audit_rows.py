"""The audit log as staff read it: who, what in words, when in the clinic's time zone to the
minute, and what changed (a line diff when an entry holds the text before and after)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from staff.audit import Entry

# Plain words for the actions staff meet most; any other action shows its code.
WORDS = {
    "subscriber.view": "viewed a person's record",
    "subscriber.search": "searched people by address or name",
    "subscriber.pause": "paused a person's email",
    "subscriber.resume": "resumed a person's email",
    "subscriber.symptoms": "changed a person's symptoms",
    "subscriber.export": "exported a person's record",
    "subscriber.erase": "erased a person",
    "subscriber.add": "added a person",
    "subscriber.edit": "edited a person",
    "staff.add": "added a staff account",
    "staff.disable": "disabled a staff account",
    "staff.reset_password": "reset a staff password",
    "settings.change": "changed a clinic setting",
    "content.create": "created a campaign (a draft with its first email)",
    "content.draft": "started a draft of a campaign",
    "content.edit": "edited an email in a draft",
    "content.add_step": "added an email to a draft",
    "content.move_step": "moved an email in a draft",
    "content.retire_step": "took an email out of a draft",
    "content.add_variant": "added a version of an email for some people",
    "content.restore": "restored a retired version as a draft",
    "content.test_send": "sent themselves a test email",
    "content.submit": "submitted a campaign version for review",
    "content.approve": "approved a campaign version",
    "content.request_changes": "asked for changes to a campaign version",
    "content.activate": "made a campaign version live",
    "content.retire": "retired a campaign version",
}


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "remove", "context" or "hunk"
    text: str


@dataclass(frozen=True)
class Row:
    id: int
    when: str
    who: str
    action: str
    words: str
    target: str
    facts: list[tuple[str, str]]
    diff: list[DiffLine]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def diff(before: Any, after: Any) -> list[DiffLine]:
    """A unified line diff of ``before`` → ``after`` (text, or JSON for structured values)."""
    lines = difflib.unified_diff(
        _text(before).splitlines(), _text(after).splitlines(), lineterm="", n=2
    )
    out = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            out.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            out.append(DiffLine("add", line[1:]))
        elif line.startswith("-"):
            out.append(DiffLine("remove", line[1:]))
        else:
            out.append(DiffLine("context", line[1:]))
    return out


def row(entry: Entry, zone: ZoneInfo) -> Row:
    detail = entry.detail if isinstance(entry.detail, dict) else {}
    facts = [
        (str(k), v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False))
        for k, v in sorted(detail.items())
        if k not in {"before", "after"}
    ]
    if entry.detail is not None and not isinstance(entry.detail, dict):
        facts.append(("detail", _text(entry.detail)))
    changed: list[DiffLine] = []
    if "before" in detail and "after" in detail:
        changed = diff(detail["before"], detail["after"])
    elif "before" in detail or "after" in detail:  # only one side kept: show it, say which
        side = "before" if "before" in detail else "after"
        facts.append(("kept", f"the text {side}"))
        changed = [DiffLine("context", line) for line in _text(detail[side]).splitlines()]
    local = entry.at.astimezone(zone)
    return Row(
        id=entry.id,
        when=f"{local:%d %b %Y %H:%M} {local.tzname()}",
        who=entry.actor,
        action=entry.action,
        words=WORDS.get(entry.action, entry.action),
        target=f"{entry.target_type} {entry.target_id}",
        facts=facts,
        diff=changed,
    )
