"""A campaign whose emails cannot be built with this installation's settings is set aside:
recorded, shown by `tick --json` and `campaigns list`, staff alerted once, and every other
campaign keeps sending. The tick never hangs on it."""

from __future__ import annotations

from pathlib import Path

from app.context import AppContext
from app.settings import load_settings
from tests.support.cli import CLI, write_csv
from tests.support.outbox import messages, text_part

MONDAY_10_LONDON = "2026-11-23T10:00:00Z"
CLINIC = "Spine & Sport Clinic"


def _campaign(root: Path, cid: str, body: str) -> None:
    (root / cid).mkdir(parents=True)
    (root / cid / "campaign.yaml").write_text(
        f"id: {cid}\nname: {cid.title()} series\nstatus: active\n", encoding="utf-8"
    )
    (root / cid / "01-hello.md").write_text(
        f'---\nsubject: "Hello from {cid}"\npreheader: "A short hello."\n---\n{body}',
        encoding="utf-8",
    )


def test_a_broken_campaign_is_set_aside_and_the_rest_keeps_sending(
    cli: CLI, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    _campaign(lib, "good", "Hi {{ first_name }}, a useful tip.\n")
    # Passes with the demo clinic's name; with this clinic's name it would loop for ever.
    _campaign(
        lib,
        "bad",
        "Hi {{ first_name }},\n\n{% if clinic.name == 'Spine & Sport Clinic' %}"
        "{% for a in 'x' * 10000 %}{% for b in 'x' * 10000 %}{% for c in 'x' * 10000 %}."
        "{% endfor %}{% endfor %}{% endfor %}{% endif %}\n",
    )
    cli.env("CLINICMAIL_CAMPAIGNS_DIR", str(lib))
    cli.env("CLINICMAIL_CLINIC_NAME", CLINIC)
    assert cli("init").code == 0
    people = write_csv(tmp_path / "p.csv", ["pat@example.com,Pat,lower_back,Europe/London,yes,,"])
    imported = cli("subscribers", "import", str(people))
    assert imported.code == 0, imported.err
    assert "campaign bad is set aside" in imported.err

    first = cli("tick", "--now", MONDAY_10_LONDON, "--json")
    assert first.code == 0, first.err
    report = first.json()
    assert report["sent"] == 1  # the good campaign's email
    assert [b["id"] for b in report["broken"]] == ["bad"]
    assert any(
        "bad/01-hello.md:7" in p and "too much work" in p for p in report["broken"][0]["problems"]
    )

    listed = cli("campaigns", "list")
    assert listed.code == 0
    assert any(line.startswith("bad\tbroken") for line in listed.out.splitlines())
    assert any(line.startswith("good\tactive") for line in listed.out.splitlines())

    # A second tick: still set aside, but staff are not told again.
    again = cli("tick", "--now", "2026-11-23T10:05:00Z", "--json").json()
    assert [b["id"] for b in again["broken"]] == ["bad"]
    ctx = AppContext.from_settings(load_settings())
    try:
        to_pat = messages(ctx, "pat@example.com")
        alerts = messages(ctx, "care@clinic.example")  # the default staff address
    finally:
        ctx.close()
    assert [m["Subject"] for m in to_pat] == ["Hello from good"]
    assert len(alerts) == 1
    assert alerts[0]["Subject"] == "Action needed: a campaign is set aside"
    body = text_part(alerts[0])
    assert "bad" in body and "too much work" in body and "pat@" not in body
