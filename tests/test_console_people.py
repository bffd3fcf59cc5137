"""A person's page in the console and the red-flag staff alert that links to it; the
``clinicmail users`` commands."""

from __future__ import annotations

import re
from email import message_from_bytes
from pathlib import Path

from sqlalchemy import select

from staff.tables import audit_log, staff_users
from tests.support.cli import CLI, write_csv
from tests.support.console import PASSWORD, STAFF, Console, users_cmd
from transports.tables import outbox


def _alert_text(console: Console, to: str) -> str:
    with console.ctx.db.begin() as conn:
        raw = conn.execute(select(outbox.c.message).where(outbox.c.recipient == to)).scalar_one()
    msg = message_from_bytes(bytes(raw))
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_red_flag_alert_links_to_the_person_page_staff_can_open(
    console: Console, tmp_path: Path
) -> None:
    cli = console.cli
    cli.env("CLINICMAIL_STAFF_EMAIL", "frontdesk@clinic.example")
    write_csv(
        tmp_path / "p.csv",
        ["flag@example.com,Fay,lower_back;sciatica;red_flag_saddle_numbness,Europe/London,yes,,"],
    )
    assert cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    assert cli("tick", "--now", "2026-11-23T03:00:00Z").code == 0
    alert = _alert_text(console, "frontdesk@clinic.example")
    found = re.search(r"http://testserver(/admin/subscribers/([0-9a-f]{32}))", alert)
    assert found, alert
    path, public_id = found.group(1), found.group(2)
    assert "flag" not in path and "Fay" not in path

    anonymous = console.client().get(path)
    assert anonymous.status_code == 303  # the link leads through the sign-in …
    client, _ = console.signed_in("marketing")
    page = client.get(path)  # … to the record
    assert page.status_code == 200
    for shown in (
        "flag@example.com",
        "Fay",
        "confirmed",
        "reported a warning sign",
        "saddle",
        "email_education",
        "safety",
    ):
        assert shown.lower() in page.text.lower(), shown
    assert page.headers["cache-control"] == "no-store"
    with console.ctx.db.begin() as conn:
        views = conn.execute(
            select(audit_log.c.actor, audit_log.c.target_id).where(
                audit_log.c.action == "subscriber.view"
            )
        ).all()
    assert views == [(STAFF["marketing"], public_id)]


def test_unknown_person_is_a_plain_404(console: Console) -> None:
    client, csrf = console.signed_in("ops")
    page = client.get("/admin/subscribers/" + "0" * 32)
    assert page.status_code == 404
    assert "No such person" in page.text and "erased" in page.text
    assert client.get("/admin/subscribers/" + "x" * 500).status_code == 404
    # An action on someone who is not there is the same page, and changes nothing.
    acted = client.post(f"/admin/subscribers/{'0' * 32}/resume", data={"csrf_token": csrf})
    assert acted.status_code == 404 and "No such person" in acted.text


def test_users_commands(console: Console) -> None:
    cli = console.cli
    listed = cli("users", "list")
    assert listed.code == 0
    for role, email in STAFF.items():
        assert re.search(rf"{re.escape(email)}\s+{role}\s+active", listed.out), listed.out

    duplicate = users_cmd(cli, "add", STAFF["ops"].upper(), "--role", "ops")
    assert duplicate.code == 1
    assert duplicate.err.strip().count("\n") == 0
    assert "already an account" in duplicate.err
    weak = users_cmd(cli, "add", "new@clinic.example", "--role", "ops", stdin="short\n")
    assert weak.code == 1 and "at least 12" in weak.err
    bad_role = users_cmd(cli, "add", "new@clinic.example", "--role", "admin")
    assert bad_role.code == 1 and "Traceback" not in bad_role.err
    assert users_cmd(cli, "add", "not-an-email", "--role", "ops").code == 1
    assert users_cmd(cli, "disable", "ghost@clinic.example").code == 1

    # Disabling ends the live session and refuses the next sign-in.
    client, _ = console.signed_in("clinician")
    assert users_cmd(cli, "disable", STAFF["clinician"]).code == 0
    assert client.get("/admin").status_code == 303
    assert console.sign_in(console.client(), "clinician").status_code == 401
    assert re.search(r"cleo@clinic\.example\s+clinician\s+disabled", cli("users", "list").out)

    # A reset enables it again with the new password only.
    new = "a different long password"
    assert users_cmd(cli, "reset-password", STAFF["clinician"], stdin=new + "\n").code == 0
    assert console.sign_in(console.client(), "clinician").status_code == 401
    assert console.sign_in(console.client(), "clinician", password=new).status_code == 303
    with console.ctx.db.begin() as conn:
        actions = conn.execute(
            select(audit_log.c.action).where(audit_log.c.actor == "cli")
        ).scalars()
        assert {"staff.add", "staff.disable", "staff.reset_password"} <= set(actions)
        # Passwords are stored only as argon2id hashes.
        hashes = conn.execute(select(staff_users.c.password_hash)).scalars().all()
    assert hashes and all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)


def test_users_help(sqlite_cli: CLI) -> None:
    for sub in ("add", "list", "disable", "reset-password", "unlock"):
        run = sqlite_cli("users", sub, "--help")
        assert run.code == 0 and "Usage" in run.out


def test_add_and_edit_one_person_with_the_import_checks(console: Console) -> None:
    """One person added and then edited from the console: the import's checks and consent rule,
    audited in the same transaction under the staff member, no health data in the entry or URL."""
    from staff.tables import audit_log
    from subscribers.tables import subscribers as people

    client, csrf = console.signed_in("marketing")
    assert client.get("/admin/subscribers/new").status_code == 200
    form = {
        "csrf_token": csrf,
        "email": "Nina@Example.com",
        "first_name": "Nina",
        "timezone": "Europe/Paris",
        "symptoms": ["lower_back", "sciatica"],
    }
    # no consent: refused with the import's reason, the typed text kept, nothing written
    refused = client.post("/admin/subscribers/new", data=form)
    assert refused.status_code == 422 and "no consent" in refused.text
    assert 'value="Nina@Example.com"' in refused.text
    bad_zone = client.post(
        "/admin/subscribers/new", data={**form, "consent": "yes", "timezone": "Mars/Base"}
    )
    assert bad_zone.status_code == 422 and "unknown time zone" in bad_zone.text
    with console.ctx.db.begin() as conn:
        assert conn.execute(select(people.c.id)).first() is None

    added = client.post("/admin/subscribers/new", data={**form, "consent": "yes"})
    assert added.status_code == 303
    location = added.headers["location"]
    found = re.fullmatch(r"/admin/subscribers/([0-9a-f]{32})\?done=added", location)
    assert found, location
    pid = found.group(1)
    with console.ctx.db.begin() as conn:
        row = conn.execute(select(people).where(people.c.public_id == pid)).one()
    assert (row.first_name, row.timezone, row.status) == ("Nina", "Europe/Paris", "confirmed")
    shown = client.get(location).text
    assert "The person was added." in shown and "(sciatica, Spreading)" in shown

    edit = client.get(f"/admin/subscribers/{pid}/edit")
    assert edit.status_code == 200 and 'value="Europe/Paris"' in edit.text
    edited = client.post(
        f"/admin/subscribers/{pid}/edit",
        data={
            "csrf_token": csrf,
            "first_name": "Nina B",
            "timezone": "Europe/London",
            "symptoms": ["neck"],
            "consent": "yes",
        },
    )
    assert edited.status_code == 303 and edited.headers["location"].endswith("done=edited")
    with console.ctx.db.begin() as conn:
        row = conn.execute(select(people).where(people.c.public_id == pid)).one()
        entries = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.target_id, audit_log.c.detail)
            .where(audit_log.c.action.in_(["subscriber.add", "subscriber.edit"]))
            .order_by(audit_log.c.id)
        ).all()
    assert (row.first_name, row.timezone) == ("Nina B", "Europe/London")
    assert [(e.actor, e.action, e.target_id) for e in entries] == [
        (STAFF["marketing"], "subscriber.add", pid),
        (STAFF["marketing"], "subscriber.edit", pid),
    ]
    for e in entries:  # no health data, no address in the audit detail
        text = str(e.detail)
        assert "sciatica" not in text and "neck" not in text and "nina" not in text.lower()
    assert "sciatica" not in location and "neck" not in edited.headers["location"]
    # no consent on an edit: refused as an import row would be
    assert (
        client.post(f"/admin/subscribers/{pid}/edit", data={"csrf_token": csrf}).status_code == 422
    )
