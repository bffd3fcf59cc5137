"""The console's clinic-settings and import seams (:mod:`console.seams`), built from the app
context: the functions the CLI runs too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from app import clinic_settings
from app.context import AppContext
from app.importing import import_file
from console.seams import ClinicSettingsPort, SettingRow, SettingsRefused
from staff.accounts import StaffUser
from subscribers.importer import Rejection, Summary


def setting_rows(ctx: AppContext) -> list[SettingRow]:
    with ctx.db.begin() as conn:
        saved = clinic_settings.stored_rows(conn)
    env, now = ctx.env_settings, ctx.settings
    out = []
    for e in clinic_settings.EDITABLE:
        _value, at, by = saved.get(e.name, (None, None, None))
        out.append(
            SettingRow(
                name=e.name,
                env=clinic_settings.env_name(e.name),
                label=e.label,
                hint=e.hint,
                required=e.required,
                value=clinic_settings.as_text(getattr(now, e.name)),
                env_value=clinic_settings.as_text(getattr(env, e.name)),
                saved_by=by,
                saved_at=at,
            )
        )
    return out


def save_settings(
    ctx: AppContext, changes: dict[str, str | None], actor: StaffUser
) -> dict[str, dict[str, str]]:
    try:
        changed = clinic_settings.save(ctx.db, ctx.env_settings, changes, actor, datetime.now(UTC))
    except clinic_settings.InvalidSettings as exc:
        raise SettingsRefused(exc.problems) from None
    ctx.refresh_settings()  # this process sends with them at once; others at their next tick
    return changed


def clinic_settings_port(ctx: AppContext) -> ClinicSettingsPort:
    return ClinicSettingsPort(
        rows=lambda: setting_rows(ctx),
        save=lambda changes, actor: save_settings(ctx, changes, actor),
    )


def import_people(
    ctx: AppContext,
) -> Callable[[Path, Callable[[Rejection], None], Callable[[int], None]], Summary]:
    def run(
        path: Path, on_reject: Callable[[Rejection], None], on_progress: Callable[[int], None]
    ) -> Summary:
        return import_file(
            ctx, path, datetime.now(UTC), on_reject=on_reject, on_progress=on_progress
        )

    return run
