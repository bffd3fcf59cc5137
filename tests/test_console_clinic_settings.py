"""Clinic settings in the console: ops changes them, they are stored over the environment's,
validated by the start-up rules, audited in the same transaction, and every process reading
settings (this one at once, a command or another service at its next open or tick) runs with
them. Other roles get 403."""

from __future__ import annotations

from sqlalchemy import insert, select

from app.context import AppContext
from app.settings import load_settings
from app.tables import setting_overrides
from staff.tables import audit_log
from storage import utcnow
from tests.support.cli import assert_one_line_error
from tests.support.console import Console, csrf_in

PATH = "/admin/ops/clinic"


def _stored(console: Console) -> dict[str, str]:
    with console.ctx.db.begin() as conn:
        rows = conn.execute(select(setting_overrides.c.name, setting_overrides.c.value)).all()
    return dict(rows)


def _audits(console: Console) -> list[dict[str, object]]:
    with console.ctx.db.begin() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.target_id, audit_log.c.detail)
            .where(audit_log.c.action == "settings.change")
            .order_by(audit_log.c.id)
        ).all()
    return [{"actor": r.actor, "target": r.target_id, "detail": r.detail} for r in rows]


def _form(page_html: str, **values: str) -> dict[str, str]:
    return {"csrf_token": csrf_in(page_html), **values}


def test_ops_saves_settings_that_override_the_environment(console: Console) -> None:
    console.cli.env("CLINICMAIL_CLINIC_NAME", "Env Clinic")
    client, _ = console.signed_in("ops")
    shown = client.get(PATH)
    assert shown.status_code == 200
    assert 'id="s-clinic_name"' in shown.text and "CLINICMAIL_SEND_WINDOW" in shown.text
    saved = client.post(
        PATH,
        data=_form(
            shown.text,
            clinic_name="Riverside Spine Clinic",
            brand_colour="#1A4D80",  # stored normalized, as start-up would
            send_window="09:00-17:00",
            emergency_number="  112 ",
        ),
    )
    assert saved.status_code == 303, saved.text
    page = client.get(saved.headers["location"])
    assert "Saved: Clinic name, Brand colour, Emergency number, Send window." in page.text
    assert _stored(console) == {
        "clinic_name": "Riverside Spine Clinic",
        "brand_colour": "#1a4d80",
        "send_window": "09:00-17:00",
        "emergency_number": "112",
    }
    (entry,) = _audits(console)
    assert entry["actor"] == "otto@clinic.example"
    detail = entry["detail"]
    assert isinstance(detail, dict)
    assert detail["changes"]["send_window"] == {"from": "08:00-20:00", "to": "09:00-17:00"}
    # this process runs with them at once: the one settings object, and the emails' look
    s = console.ctx.settings
    assert (s.clinic_name, s.brand_colour, s.window[0].hour) == (
        "Riverside Spine Clinic",
        "#1a4d80",
        9,
    )
    assert console.ctx.renderer.clinic.name == "Riverside Spine Clinic"
    assert console.ctx.renderer.clinic.emergency_number == "112"
    # the effective-settings page shows them too
    assert "Riverside Spine Clinic" in client.get("/admin/ops/settings").text
    # a command reads them over the environment (it names the clinic in the email's footer)
    preview = console.cli(
        "campaigns", "preview", "spasm-education", "1", "--symptoms", "lower_back"
    )
    assert preview.code == 0, preview.err
    assert "Riverside Spine Clinic" in preview.out and "Env Clinic" not in preview.out
    # another process opening the database (a second service) reads them too
    other = AppContext.from_settings(load_settings())
    try:
        other.db.open()
        assert other.settings.clinic_name == "Env Clinic"
        assert other.refresh_settings() is True
        assert other.settings.clinic_name == "Riverside Spine Clinic"
        assert other.env_settings.clinic_name == "Env Clinic"
        assert other.refresh_settings() is False  # nothing new
    finally:
        other.close()


def test_a_bad_value_is_refused_with_the_start_up_rule_and_nothing_is_stored(
    console: Console,
) -> None:
    client, _ = console.signed_in("ops")
    shown = client.get(PATH)
    refused = client.post(
        PATH,
        data=_form(
            shown.text,
            clinic_name="Good Name",
            brand_colour="#eeeeee",
            send_window="20:00-08:00x",
            booking_url="ftp://clinic.example/book",
            clinic_address=" ",
        ),
    )
    assert refused.status_code == 422
    assert "Nothing was saved" in refused.text
    assert "is too light: white button text on it would be hard to read" in refused.text
    assert "must be an http(s), mailto: or tel: URL" in refused.text
    assert "Postal address must not be empty" in refused.text
    assert 'id="e-send_window"' in refused.text
    assert 'value="#eeeeee"' in refused.text  # what was typed is kept
    assert _stored(console) == {} and _audits(console) == []
    assert console.ctx.settings.clinic_name != "Good Name"


def test_reset_brings_back_the_environment_value(console: Console) -> None:
    client, _ = console.signed_in("ops")
    shown = client.get(PATH)
    client.post(PATH, data=_form(shown.text, urgent_advice="Call 811", quiet_days="sat,sun"))
    assert console.ctx.settings.urgent_advice == "Call 811"
    shown = client.get(PATH)
    assert (
        'name="reset-urgent_advice"' in shown.text and "Saved by otto@clinic.example" in shown.text
    )
    reset = client.post(PATH, data=_form(shown.text, **{"reset-urgent_advice": "1"}))
    assert reset.status_code == 303
    assert _stored(console) == {"quiet_days": "sat,sun"}
    assert console.ctx.settings.urgent_advice == "NHS 111"
    last = _audits(console)[-1]["detail"]
    assert isinstance(last, dict) and last["reset"] == ["urgent_advice"]
    # saving the page unchanged changes nothing and writes no audit entry
    again = client.post(PATH, data=_form(client.get(PATH).text))
    assert again.headers["location"].endswith("saved=-")
    assert len(_audits(console)) == 2


def test_other_roles_get_403(console: Console) -> None:
    for role in ("marketing", "clinician"):
        client, token = console.signed_in(role)
        assert client.get(PATH).status_code == 403
        posted = client.post(PATH, data={"csrf_token": token, "clinic_name": "Hijacked"})
        assert posted.status_code == 403
    assert _stored(console) == {}


def test_a_stored_value_the_rules_now_refuse_stops_start_up_with_one_line(
    console: Console,
) -> None:
    with console.ctx.db.begin() as conn:
        conn.execute(
            insert(setting_overrides).values(
                name="brand_colour", value="#ffffff", updated_at=utcnow(), updated_by="x"
            )
        )
    run = console.cli("tick", "--dry-run")
    assert_one_line_error(run, "CLINICMAIL_BRAND_COLOUR", "console")
