"""Seams the composition root hands the console's clinic-settings and import pages: plain
callables over the code the console may not import (the settings and the enrolment that
follows an import live in the composition root)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.errors import InputError
from staff.accounts import StaffUser
from subscribers.importer import Rejection, Summary


@dataclass(frozen=True)
class SettingRow:
    """One setting a clinic changes: what it is, its effective value, the environment's value,
    and who saved the value in the console (None while the environment's applies)."""

    name: str
    env: str
    label: str
    hint: str
    required: bool
    value: str
    env_value: str
    saved_by: str | None = None
    saved_at: datetime | None = None


class SettingsRefused(InputError, ValueError):
    """Values that do not validate; ``problems`` maps each bad setting's name to the reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class ClinicSettingsPort:
    # Every setting staff may change, in the order the page shows them.
    rows: Callable[[], list[SettingRow]]
    # Store the changes (name → text; None: back to the environment's value) as this staff
    # member, audited, and apply them to the running service; returns what changed, by name
    # ({"from": …, "to": …}). Raises SettingsRefused, storing nothing, when any value is bad.
    save: Callable[[dict[str, str | None], StaffUser], dict[str, dict[str, str]]]


# ``clinicmail subscribers import``'s work on one checked file: (file, on_reject, on_progress)
# → the summary; the people it confirms enter the campaigns their symptoms select.
ImportRun = Callable[[Path, Callable[[Rejection], None], Callable[[int], None]], Summary]
