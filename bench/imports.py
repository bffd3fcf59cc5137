"""`make bench`: the CSV import and webhook ingest rows of the table, each beside the naive way.

    python bench/imports.py --scenario naive-import --rows N --url URL
    python bench/imports.py --scenario ingest --batches B [--url URL]

``bench/delivery.py`` calls :func:`measure` (each measure in its own process) and
:func:`table_rows`; the clinicmail import figure itself comes from ``bench/run.py``'s runs and
the HTTP webhook figure from ``bench/webhook.py``.

* naive import: what a first version does, row by row: ``email_validator.validate_email``, a
  ``SELECT`` for the address, one ``INSERT`` for the subscriber (its id from the insert), one
  per symptom and per consent record; a transaction per 1,000 rows, no enrolment (which only
  flatters it).
* ingest core, in process, no HTTP: ``parse_sendgrid`` + ``store`` per 1,000-event batch
  against the naive way: ``json.loads`` and one ``INSERT`` per event inside a savepoint, a
  duplicate caught as ``IntegrityError``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def naive_import(rows: int, url: str) -> dict[str, Any]:
    import csv

    from email_validator import validate_email
    from sqlalchemy import insert, select

    from bench.run import make_csv
    from storage import Database
    from subscribers.tables import consent_events, subscriber_symptoms, subscribers

    workdir = Path(tempfile.mkdtemp(prefix="clinicmail-naive-import-"))
    db = Database(url, key_file=str(workdir / "keys"))
    db.migrate()
    path = workdir / "people.csv"
    make_csv(path, rows)
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as fh:
        records = list(csv.DictReader(fh))
    for start in range(0, len(records), 1000):
        with db.begin() as conn:
            for i, rec in enumerate(records[start : start + 1000]):
                email = validate_email(rec["email"], check_deliverability=False).normalized
                key = email.lower()
                if conn.execute(
                    select(subscribers.c.id).where(subscribers.c.email_key == key)
                ).first():
                    continue
                written = conn.execute(
                    insert(subscribers),
                    {
                        "public_id": f"naive{start + i:027d}",
                        "email": email,
                        "email_key": key,
                        "first_name": rec["first_name"],
                        "timezone": rec["timezone"],
                        "status": "confirmed",
                        "source": rec["source"],
                        "red_flag": False,
                        "created_at": NOW,
                        "updated_at": NOW,
                        "confirmed_at": NOW,
                    },
                ).inserted_primary_key
                assert written is not None
                sid = written[0]
                codes = [c for c in rec["symptoms"].split(";") if c]
                for code in codes:
                    conn.execute(insert(subscriber_symptoms), {"subscriber_id": sid, "code": code})
                for purpose, action in [
                    ("email_education", "given"),
                    ("email_education", "confirmed"),
                ] + ([("health_data", "given")] if codes else []):
                    conn.execute(
                        insert(consent_events),
                        {
                            "subscriber_id": sid,
                            "purpose": purpose,
                            "action": action,
                            "at": NOW,
                            "source": "bench",
                        },
                    )
    seconds = time.perf_counter() - started
    db.dispose()
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds)}


def ingest(batches: int, url: str | None) -> dict[str, Any]:
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from engagement.ingest import parse_sendgrid, store
    from engagement.tables import email_events
    from storage import Database, utcnow
    from subscribers.addresses import address_hash
    from tests.support.backends import reset_postgres
    from tests.support.webhook_batches import bodies, seed

    workdir = Path(tempfile.mkdtemp(prefix="clinicmail-ingest-"))
    figures: dict[str, Any] = {"batches": batches, "events_per_batch": 1000}
    for way in ("clinicmail", "naive"):
        db = Database(url or f"sqlite:///{workdir / f'{way}.db'}", key_file=str(workdir / "k"))
        if url:
            reset_postgres(url)
        db.migrate()
        payloads = bodies(seed(db), batches, 1000)
        started = time.perf_counter()
        for body in payloads:
            if way == "clinicmail":
                with db.begin() as conn:
                    store(conn, parse_sendgrid(body), utcnow())
                continue
            with db.begin() as conn:
                for n, raw in enumerate(json.loads(body)):
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                insert(email_events),
                                {
                                    "provider": "sendgrid",
                                    "sg_event_id": raw["sg_event_id"],
                                    "natural_key": f"{raw['sg_event_id']}-{n}",
                                    "sg_message_id": raw["sg_message_id"],
                                    "event": raw["event"],
                                    "kind": raw["event"],
                                    "send_id": raw.get("send_id"),
                                    "email_hash": address_hash(raw["email"]),
                                    "received_at": utcnow(),
                                    "payload": json.dumps(raw),
                                },
                            )
                    except IntegrityError:
                        pass
        seconds = time.perf_counter() - started
        figures[f"{way}_events_per_second"] = round(batches * 1000 / seconds)
        db.dispose()
    return figures


def _run(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(Path(__file__).resolve()), *args],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=ROOT,
    ).stdout
    return dict(json.loads(out[out.index("{") :]))


def measure(workdir: Path, postgres_url: str | None, naive_rows: int) -> dict[str, Any]:
    """The naive import and the in-process ingest comparison, per backend."""
    from tests.support.backends import reset_postgres

    figures: dict[str, Any] = {"naive_import": {}, "ingest": {}}
    url = f"sqlite:///{workdir / 'naive-import.db'}"
    figures["naive_import"]["sqlite"] = _run(
        ["--scenario", "naive-import", "--rows", str(naive_rows), "--url", url]
    )
    figures["ingest"]["sqlite"] = _run(["--scenario", "ingest", "--batches", "10"])
    if postgres_url:
        reset_postgres(postgres_url)
        figures["naive_import"]["postgres"] = _run(
            ["--scenario", "naive-import", "--rows", str(naive_rows), "--url", postgres_url]
        )
        figures["ingest"]["postgres"] = _run(
            ["--scenario", "ingest", "--batches", "10", "--url", postgres_url]
        )
    return figures


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def table_rows(
    rows: int,
    send: dict[str, list[dict[str, Any]]],
    webhook: dict[str, Any],
    extra: dict[str, Any],
    targets: dict[str, float],
) -> list[tuple[str, str, str, str]]:
    """The import and webhook rows of ``docs/benchmarks.md``'s table."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    out: list[tuple[str, str, str, str]] = []
    imp = _median(send["sqlite"], "import_rows_per_second")
    line = f"{imp:,.0f}/s SQLite"
    ok = imp >= targets["sqlite_import_rows_per_second"]
    if send["postgres"]:
        pimp = _median(send["postgres"], "import_rows_per_second")
        line += f", {pimp:,.0f}/s PostgreSQL"
        ok = ok and pimp >= targets["postgres_import_rows_per_second"]
    out.append(
        (
            f"CSV import, {rows:,} rows (with enrolment)",
            line,
            "≥ 25,000/s SQLite, ≥ 12,000/s PG",
            verdict(ok),
        )
    )
    naive = extra.get("naive_import", {})
    if naive:
        n = next(iter(naive.values()))["rows"]
        text = ", ".join(f"{v['rows_per_second']:,}/s {k}" for k, v in naive.items())
        out.append(
            (
                f"naive import (email-validator and one INSERT per row, {n:,} rows)",
                f"{text}; clinicmail (SQLite) is {imp / naive['sqlite']['rows_per_second']:,.1f}×",
                "—",
                "",
            )
        )
    if webhook:
        figures = {k: v["ingest_events_per_second"] for k, v in webhook.items()}
        out.append(
            (
                "webhook ingest over HTTP, verified and deduplicated",
                ", ".join(f"{v:,}/s {k}" for k, v in figures.items()),
                "≥ 20,000/s on both",
                verdict(all(v >= targets["webhook_events_per_second"] for v in figures.values())),
            )
        )
    for name, f in extra.get("ingest", {}).items():
        out.append(
            (
                f"ingest core in process (parse + store), {name}; naive: one INSERT per event "
                "in a savepoint",
                f"{f['clinicmail_events_per_second']:,}/s; naive "
                f"{f['naive_events_per_second']:,}/s "
                f"({f['clinicmail_events_per_second'] / f['naive_events_per_second']:,.1f}×)",
                "—",
                "",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=["naive-import", "ingest"], required=True)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    if args.scenario == "naive-import":
        url = args.url or f"sqlite:///{tempfile.mkdtemp()}/naive.db"
        print(json.dumps(naive_import(args.rows, url)))
    else:
        print(json.dumps(ingest(args.batches, args.url)))


if __name__ == "__main__":
    main()
