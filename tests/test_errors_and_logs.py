"""A 500 shows a plain page (or JSON for the API) and logs one redacted line: no SQL parameters,
no address, no name, no symptom, in text or JSON logs. Addresses of every legal shape are masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from app.logs import configure, redact_text
from tests.support.app import app_for, link_in
from tests.support.cli import CLI, write_csv
from tests.support.outbox import messages
from tests.support.times import future_noon, iso

PERSONAL = ("Zebedee", "ann@example.com", "America/New_York", "red_flag", "ann@")


def _break_updates(conn: object, dialect: str) -> None:
    """A database that refuses to update a subscriber: the next update fails mid-request."""
    if dialect == "postgresql":
        conn.execute(  # type: ignore[attr-defined]
            text(
                "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'boom'; "
                "END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(  # type: ignore[attr-defined]
            text(
                "CREATE TRIGGER boom BEFORE UPDATE ON subscribers FOR EACH ROW "
                "EXECUTE FUNCTION boom()"
            )
        )
    else:
        conn.execute(  # type: ignore[attr-defined]
            text(
                "CREATE TRIGGER boom BEFORE UPDATE ON subscribers "
                "BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )
        )


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_500_is_plain_and_its_log_holds_nothing_personal(
    cli: CLI, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(tmp_path / "p.csv", ["ann@example.com,Ann,lower_back,Europe/London,yes,,"])
    assert cli("init").code == 0
    assert cli("subscribers", "import", str(tmp_path / "p.csv")).code == 0
    stranger = {
        "email": "ann@example.com",
        "first_name": "Zebedee",
        "symptoms": ["red_flag_bladder_bowel"],
        "timezone": "America/New_York",
        "consent": True,
    }
    with app_for(cli) as (client, ctx):
        assert client.post("/api/subscribers", json=stranger).status_code == 202
        assert cli("tick", "--now", iso(future_noon()), "--json").code == 0
        confirm = next(m for m in messages(ctx, "ann@example.com") if "confirm" in m["Subject"])
        link = link_in(confirm, "confirm")
        with ctx.db.begin() as conn:
            _break_updates(conn, conn.dialect.name)
        configure(fmt, "INFO")
        capsys.readouterr()

        page = client.post(link)  # applying the held request updates Ann: the database refuses
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        assert "Sorry, something went wrong" in page.text
        assert "Internal Server Error" not in page.text and "Traceback" not in page.text
        api = client.post(link, headers={"Accept": "application/json"})
        assert api.status_code == 500 and set(api.json()) == {"detail"}

    logged = capsys.readouterr().err
    assert "unexpected error answering POST /confirm/{token}" in logged
    assert "Traceback" in logged or "exception" in logged  # operators still get the trace
    for word in PERSONAL:
        assert word not in logged, word
    assert link.rsplit("/", 1)[1] not in logged  # the token in the URL is a credential
    if fmt == "json":
        lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
        assert any(line["level"] == "error" for line in lines)


@pytest.mark.parametrize(
    "address",
    [
        "o'brien+tag@example.org",
        "{ann}~!@example.org",
        "Ann.Lee@Example.co.uk",
        '"ann lee"@example.org',
        "x#y$z%w&v*u=t?s^r`q|p@mail.example",
        "bob@[192.0.2.1]",
    ],
)
def test_every_address_shape_is_masked(address: str) -> None:
    masked = redact_text(f"bounce for <{address}>: 550 no such user")
    assert masked == "bounce for <[address]>: 550 no such user"


def test_database_quoted_values_are_masked() -> None:
    masked = redact_text(
        'duplicate key value violates unique constraint "uq_subscribers_email_key"\n'
        "DETAIL:  Key (email_key)=(zeb) already exists.\n"
        "[parameters: ('Zebedee', 'red_flag_leg_weakness')]\n"
        "DETAIL:  Failing row contains (7, Zebedee, null)."
    )
    assert "Zebedee" not in masked and "zeb" not in masked and "red_flag" not in masked
    assert "uq_subscribers_email_key" in masked  # what failed stays readable
