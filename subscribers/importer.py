"""Streaming CSV import (``clinicmail subscribers import``).

The file is checked once for encoding and shape before anything is written, so a garbage file is
one clear error and never half-imported. Rows are then read lazily and written in chunks, so memory
stays flat however long the file is. Each bad row is rejected with its reason; the rest import.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import available_timezones

from sqlalchemy import Connection, select, update

from core.errors import InputError
from core.headers import NAME_MAX, header_problem
from storage import Database
from subscribers import bulkload, store
from subscribers.addresses import InvalidAddress, normalize
from subscribers.store import Profile
from subscribers.symptoms import BY_CODE, has_red_flag
from subscribers.tables import consent_events, subscriber_symptoms, subscribers

COLUMNS = ("email", "first_name", "symptoms", "timezone", "consent", "consent_at", "source")
CONSENT_YES = frozenset({"yes", "true", "1"})
CHUNK = 1000
csv.field_size_limit(1 << 20)


class ImportFileError(InputError, ValueError):
    """The file as a whole cannot be imported (missing, not UTF-8, not CSV, no email column)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    email: str
    reason: str

    def cells(self) -> list[str]:
        """The report row, safe to open in a spreadsheet (:func:`spreadsheet_safe`)."""
        return [str(self.line), spreadsheet_safe(self.email), spreadsheet_safe(self.reason)]


# OWASP "CSV Injection": a cell starting with one of these is run as a formula by spreadsheet
# programs (=HYPERLINK(…) phones home, @SUM(…) runs); a leading apostrophe makes it text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_START) else cell


@dataclass
class Summary:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    key: str
    first_name: str | None
    symptoms: frozenset[str]
    timezone: str | None
    consent_at: datetime | None
    source: str | None


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _clean(value: str | None, limit: int) -> str | None:
    text = " ".join((value or "").split())  # collapse whitespace, drop control line breaks
    return text[:limit] or None


def parse_row(line: int, raw: dict[str | None, str | list[str] | None]) -> Row | Rejection:
    """Validate one CSV record; returns a :class:`Row` or the :class:`Rejection` saying why."""

    def get(name: str) -> str:
        value = raw.get(name)
        return value.strip() if isinstance(value, str) else ""

    email_text = get("email")
    try:
        email, key = normalize(email_text)
    except InvalidAddress as exc:
        return Rejection(line, email_text, str(exc))
    if get("consent").lower() not in CONSENT_YES:
        return Rejection(line, email, "no consent (the consent column must be yes, true or 1)")
    codes = frozenset(c.strip() for c in get("symptoms").split(";") if c.strip())
    unknown = sorted(c for c in codes if c not in BY_CODE)
    if unknown:
        return Rejection(line, email, f"unknown symptom code: {', '.join(unknown)}")
    zone = get("timezone") or None
    if zone is not None and zone not in known_zones():
        return Rejection(line, email, f"unknown time zone: {zone}")
    consent_at: datetime | None = None
    if get("consent_at"):
        try:
            consent_at = datetime.fromisoformat(get("consent_at").replace("Z", "+00:00"))
        except ValueError:
            return Rejection(line, email, f"invalid consent_at (not ISO 8601): {get('consent_at')}")
        if consent_at.tzinfo is None:
            consent_at = consent_at.replace(tzinfo=UTC)
    problem = header_problem(get("first_name"), max_length=NAME_MAX)
    if problem:  # emails greet by first name: it goes into subject lines too
        return Rejection(line, email, f"first_name {problem}")
    return Row(
        line=line,
        email=email,
        key=key,
        first_name=_clean(get("first_name"), NAME_MAX),
        symptoms=codes,
        timezone=zone,
        consent_at=consent_at,
        source=_clean(get("source"), 100),
    )


def check_file(path: Path) -> None:
    """Fail early, and once, on a file that is missing, not UTF-8, binary, or without a header."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            if b"\x00" in block:
                raise ImportFileError(
                    f"{path}: this is not a CSV text file (it contains NUL bytes)"
                )
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"{path}: not UTF-8 text (bad byte at offset {offset + exc.start}); "
                    "save it as 'CSV UTF-8' and try again"
                ) from None
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportFileError(f"{path}: not UTF-8 text (it ends mid-character)") from None
    with path.open(encoding="utf-8-sig", newline="") as fh:
        try:
            header = next(csv.reader(fh), None)
        except csv.Error as exc:
            raise ImportFileError(f"{path}: not a CSV file ({exc})") from None
    if not header:
        raise ImportFileError(f"{path}: the file is empty; expected a header row")
    names = [h.strip().lower() for h in header]
    if "email" not in names:
        raise ImportFileError(
            f"{path}: no 'email' column in the header row (expected columns: {', '.join(COLUMNS)})"
        )


def read_rows(path: Path) -> Iterator[tuple[int, dict[str | None, str | list[str] | None]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        reader.fieldnames = [h.strip().lower() for h in reader.fieldnames or []]
        try:
            for record in reader:
                yield reader.line_num, record
        except csv.Error as exc:
            raise ImportFileError(
                f"{path}: not a CSV file near line {reader.line_num} ({exc})"
            ) from None


def count_rows(path: Path) -> int:
    """Data rows, for the progress bar (a fast byte scan; quoted newlines may overcount)."""
    with path.open("rb") as fh:
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return max(lines - 1, 0)


class Importer:
    """Applies validated rows chunk by chunk; each chunk is one short transaction.

    ``on_chunk`` gets the profiles of the people who became confirmed or whose symptoms changed
    in that chunk, inside its transaction (the CLI enrols them and routes red flags there). The
    profiles of new subscribers are built from what was just written, not read back.
    """

    def __init__(self, db: Database, now: datetime) -> None:
        self.db = db
        self.now = now

    def run(
        self,
        path: Path,
        *,
        on_reject: Callable[[Rejection], None] = lambda _r: None,
        on_progress: Callable[[int], None] = lambda _n: None,
        on_chunk: Callable[[Connection, list[Profile]], None] = lambda _c, _p: None,
    ) -> Summary:
        check_file(path)
        summary = Summary()
        pending: list[Row] = []
        for line, raw in read_rows(path):
            parsed = parse_row(line, raw)
            if isinstance(parsed, Rejection):
                summary.rejected += 1
                on_reject(parsed)
            else:
                pending.append(parsed)
            if len(pending) >= CHUNK:
                self._apply(pending, summary, on_reject, on_chunk)
                on_progress(len(pending))
                pending = []
            elif isinstance(parsed, Rejection):
                on_progress(1)
        if pending:
            self._apply(pending, summary, on_reject, on_chunk)
            on_progress(len(pending))
        return summary

    def apply_one(
        self,
        row: Row,
        *,
        on_chunk: Callable[[Connection, list[Profile]], None] = lambda _c, _p: None,
        then: Callable[[Connection, Summary], None] = lambda _c, _s: None,
    ) -> tuple[Summary, Rejection | None]:
        """Add or update one person exactly as an import row would (the console's "add or edit
        a person"); ``then`` runs last inside the same transaction (the caller's audit entry),
        and not at all when the row was refused."""
        summary = Summary()
        refused: list[Rejection] = []

        def after(conn: Connection, done: Summary) -> None:
            if not refused:
                then(conn, done)

        self._apply([row], summary, refused.append, on_chunk, after)
        return summary, (refused[0] if refused else None)

    def _apply(
        self,
        rows: list[Row],
        summary: Summary,
        on_reject: Callable[[Rejection], None],
        on_chunk: Callable[[Connection, list[Profile]], None],
        then: Callable[[Connection, Summary], None] = lambda _c, _s: None,
    ) -> None:
        # A later row for the same address in one chunk wins, like a later row in a later chunk.
        latest: dict[str, Row] = {}
        duplicates = 0
        for row in rows:
            if row.key in latest:
                duplicates += 1
            latest[row.key] = row
        with self.db.begin() as conn:
            suppressed = store.suppressed_keys(conn, latest)
            existing = {
                r.email_key: r
                for r in conn.execute(
                    select(
                        subscribers.c.id,
                        subscribers.c.email_key,
                        subscribers.c.first_name,
                        subscribers.c.timezone,
                        subscribers.c.status,
                    ).where(subscribers.c.email_key.in_(list(latest)))
                )
            }
            current_symptoms = store.symptoms_of(conn, (r.id for r in existing.values()))
            new_rows: list[Row] = []
            touched: list[int] = []
            for key, row in latest.items():
                if key in suppressed:
                    summary.rejected += 1
                    on_reject(
                        Rejection(row.line, row.email, "suppressed (erased, bounced or complained)")
                    )
                    continue
                old = existing.get(key)
                if old is None:
                    new_rows.append(row)
                    continue
                changed = False
                values: dict[str, object] = {}
                if row.first_name is not None and row.first_name != old.first_name:
                    values["first_name"] = row.first_name
                if row.timezone is not None and row.timezone != old.timezone:
                    values["timezone"] = row.timezone
                if old.status == store.UNCONFIRMED:
                    values.update(status=store.CONFIRMED, confirmed_at=row.consent_at or self.now)
                    self._consent(conn, old.id, row, store.EMAIL_PURPOSE, "confirmed")
                    touched.append(old.id)
                if values:
                    values["updated_at"] = self.now
                    conn.execute(
                        update(subscribers).where(subscribers.c.id == old.id).values(**values)
                    )
                    changed = True
                if row.symptoms != current_symptoms.get(old.id, frozenset()):
                    store.set_symptoms(conn, old.id, row.symptoms)
                    if row.symptoms:
                        self._consent(conn, old.id, row, store.HEALTH_PURPOSE, "given")
                    if old.id not in touched:
                        touched.append(old.id)
                    changed = True
                if changed:
                    summary.updated += 1
                else:
                    summary.unchanged += 1
            summary.unchanged += duplicates
            # Subscribers who became confirmed or whose symptoms changed: the caller enrols
            # them now, chunk by chunk, so memory stays flat however long the file is.
            people = list(store.profiles(conn, touched).values()) if touched else []
            if new_rows:
                added = self._insert(conn, new_rows)
                summary.imported += len(added)
                people.extend(added)
                if len(added) < len(new_rows):
                    inserted = {p.email.lower() for p in added}
                    for row in new_rows:
                        if row.key not in inserted:
                            summary.rejected += 1
                            on_reject(Rejection(row.line, row.email, RACED))
            if people:
                on_chunk(conn, people)
            then(conn, summary)

    def _consent(self, conn: Connection, sid: int, row: Row, purpose: str, action: str) -> None:
        store.record_consent(
            conn, sid, purpose=purpose, action=action, at=self.now, source=row.source or "import"
        )

    def _insert(self, conn: Connection, rows: list[Row]) -> list[Profile]:
        """Write new subscribers with their symptoms and consent; return their profiles."""
        now = self.now
        values = [
            (
                store.new_public_id(),
                r.email,
                r.key,
                r.first_name,
                r.timezone,
                store.CONFIRMED,
                r.source or "import",
                has_red_flag(r.symptoms),
                now,
                now,
                (r.consent_at or now).astimezone(UTC),
            )
            for r in rows
        ]
        ids = bulkload.insert_subscribers(conn, values)
        people: list[Profile] = []
        symptom_rows: list[tuple[int, str]] = []
        consent_rows: list[tuple[object, ...]] = []
        for r, (public_id, *_, red_flag, _c, _u, confirmed_at) in zip(rows, values, strict=True):
            sid = ids.get(r.key)
            if sid is None:  # added by another writer since this chunk looked
                continue
            people.append(
                Profile(
                    id=sid,
                    public_id=public_id,
                    email=r.email,
                    first_name=r.first_name,
                    timezone=r.timezone,
                    status=store.CONFIRMED,
                    red_flag=red_flag,
                    symptoms=r.symptoms,
                    confirmed_at=confirmed_at,
                    paused_until=None,
                    last_campaign_send_at=None,
                )
            )
            symptom_rows.extend((sid, code) for code in sorted(r.symptoms))
            given = r.consent_at or now
            src = r.source or "import"
            consent_rows.append((sid, store.EMAIL_PURPOSE, "given", given, src, "import"))
            consent_rows.append((sid, store.EMAIL_PURPOSE, "confirmed", given, src, "import"))
            if r.symptoms:
                consent_rows.append((sid, store.HEALTH_PURPOSE, "given", given, src, "import"))
        bulkload.append(conn, subscriber_symptoms, ("subscriber_id", "code"), symptom_rows)
        bulkload.append(conn, consent_events, CONSENT_COLUMNS, consent_rows)
        return people


# The consent rows the import writes. The wording the person agreed to is the clinic's own,
# recorded as version "import" with no hash; there is no IP address or browser to record.
CONSENT_COLUMNS = ("subscriber_id", "purpose", "action", "at", "source", "wording_version")
RACED = "added by someone else during this import; import the file again to update it"
