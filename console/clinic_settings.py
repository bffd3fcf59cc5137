"""Clinic settings (the ``ops`` role only; anyone else gets 403): the clinic's name and
address, booking link, brand colour and logo, care lines, send window, quiet days and
holidays. A saved value overrides the environment's for the running service; each save is
validated by the same rules as start-up and audited."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console.auth import Staff, require_role
from console.deps import ports as console_ports
from console.errors import Forbidden
from console.render import page
from console.seams import ClinicSettingsPort, SettingRow, SettingsRefused
from staff.roles import OPS

PATH = "/admin/ops/clinic"
router = APIRouter()


def _port(request: Request) -> ClinicSettingsPort:
    ports = console_ports(request)  # as every console route gets them (console.deps)
    if ports.clinic_settings is None:
        raise Forbidden("This console was started without the service; nothing to show here.")
    return ports.clinic_settings


def _render(
    request: Request,
    rows: list[SettingRow],
    *,
    values: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    saved: list[str] | None = None,
    status: int = 200,
) -> Response:
    return page(
        request,
        "ops/clinic_settings.html",
        {
            "title": "Ops · clinic settings",
            "rows": rows,
            "values": values or {r.name: r.value for r in rows},
            "problems": problems or {},
            "saved": saved or [],
        },
        status=status,
    )


@router.get(PATH, include_in_schema=False)
def show(request: Request, session: Staff) -> Response:
    require_role(session, OPS)
    rows = _port(request).rows()
    labels = {r.name: r.label for r in rows}
    asked = request.query_params.get("saved", "")
    saved = [labels[n] for n in asked.split(",") if n in labels]
    return _render(request, rows, saved=saved or (["nothing changed"] if asked == "-" else []))


@router.post(PATH, include_in_schema=False)
async def save(request: Request, session: Staff) -> Response:
    require_role(session, OPS)
    port = _port(request)
    form = await request.form()
    rows = port.rows()
    changes: dict[str, str | None] = {}
    values: dict[str, str] = {}
    for row in rows:
        text = form.get(row.name)
        values[row.name] = text if isinstance(text, str) else row.value
        if form.get(f"reset-{row.name}") and row.saved_by is not None:
            changes[row.name] = None
        elif isinstance(text, str) and text.strip() != row.value:
            changes[row.name] = text.strip()
    try:
        changed = port.save(changes, session.user) if changes else {}
    except SettingsRefused as exc:
        return _render(request, rows, values=values, problems=exc.problems, status=422)
    return RedirectResponse(f"{PATH}?saved={','.join(changed) or '-'}", status_code=303)
