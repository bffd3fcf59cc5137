"""CSV import from the console (``/admin/import``): the same checks, reject reasons and summary
as ``clinicmail subscribers import``, with a progress bar while it runs and the rejected rows as
a downloadable report.

The upload is checked as a whole first (UTF-8, CSV, an ``email`` column), so a bad file is one
clear message and nothing is written. The import then runs in a background thread of this
process; the page polls its progress. Jobs live in memory: each is visible only to the staff
member who started it, and is forgotten an hour after it ends (the reject report holds
addresses). Every import is written to the audit log with its summary.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from console.auth import Staff
from console.deps import ports as console_ports
from console.errors import Forbidden, NotFound
from console.render import page
from console.seams import ImportRun
from staff import audit
from staff.accounts import StaffUser
from storage import Database, utcnow
from subscribers.importer import (
    COLUMNS,
    ImportFileError,
    Rejection,
    Summary,
    check_file,
    count_rows,
)

PATH = "/admin/import"
KEEP = timedelta(hours=1)
SHOWN_REJECTS = 100
router = APIRouter()


@dataclass
class Job:
    id: str
    owner: int
    file_name: str
    total: int
    started: datetime
    done: int = 0
    rejects: list[Rejection] = field(default_factory=list)
    summary: Summary | None = None
    error: str | None = None
    ended: datetime | None = None

    @property
    def percent(self) -> int:
        if self.ended is not None:
            return 100
        return min(99, self.done * 100 // self.total) if self.total else 0


_JOBS: dict[str, Job] = {}
_LOCK = threading.Lock()


def _forget_old(now: datetime) -> None:
    with _LOCK:
        for key in [k for k, j in _JOBS.items() if j.ended and now - j.ended > KEEP]:
            del _JOBS[key]


def _job(job_id: str, user: StaffUser) -> Job:
    with _LOCK:
        job = _JOBS.get(job_id)
    if job is None or job.owner != user.id:
        raise NotFound("No such import", "This import is not yours, or it ended over an hour ago.")
    return job


def _ports(request: Request) -> tuple[Database, ImportRun]:
    ports = console_ports(request)  # as every console route gets them (console.deps)
    if ports.import_people is None:
        raise Forbidden("This console was started without the service; nothing to show here.")
    return ports.db, ports.import_people


def _run(job: Job, path: Path, run: ImportRun, db: Database, user: StaffUser) -> None:
    def progress(n: int) -> None:
        job.done += n

    try:
        job.summary = run(path, job.rejects.append, progress)
    except ImportFileError as exc:
        job.error = str(exc).replace(str(path), job.file_name)
    except Exception:  # the page says so; the details stay in the server's log
        import logging

        logging.getLogger("clinicmail.console").exception("import %s failed", job.id)
        job.error = "The import stopped on an unexpected error; rows before it were imported."
    finally:
        path.unlink(missing_ok=True)
        detail: dict[str, object] = {"file": job.file_name}
        if job.summary is not None:
            detail.update(job.summary.as_dict())
        if job.error is not None:
            detail["error"] = job.error
        with db.begin() as conn:
            audit.record(conn, user, "subscribers.import", "import", job.id, utcnow(), detail)
        job.ended = utcnow()


def _form(request: Request, error: str | None = None, status: int = 200) -> Response:
    return page(
        request,
        "import/form.html",
        {"title": "Import people", "error": error, "columns": COLUMNS},
        status=status,
    )


@router.get(PATH, include_in_schema=False)
def form(request: Request, session: Staff) -> Response:
    _ports(request)
    return _form(request)


@router.post(PATH, include_in_schema=False)
async def start(request: Request, session: Staff) -> Response:
    db, run = _ports(request)
    upload = (await request.form()).get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        if isinstance(upload, UploadFile):
            await upload.close()
        return _form(request, "Choose a CSV file to import.", 422)
    name = Path(upload.filename).name[:200]
    fd, tmp = tempfile.mkstemp(prefix="clinicmail-import-", suffix=".csv")
    path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            while chunk := await upload.read(1 << 20):
                fh.write(chunk)
    finally:
        await upload.close()
    try:
        check_file(path)  # a bad file is one message, and nothing is written
    except ImportFileError as exc:
        path.unlink(missing_ok=True)
        return _form(request, str(exc).replace(str(path), name), 422)
    now = utcnow()
    _forget_old(now)
    job = Job(secrets.token_urlsafe(12), session.user.id, name, count_rows(path), now)
    with _LOCK:
        _JOBS[job.id] = job
    threading.Thread(
        target=_run, args=(job, path, run, db, session.user), name=f"import-{job.id}", daemon=True
    ).start()
    return RedirectResponse(f"{PATH}/{job.id}", status_code=303)


def _context(job: Job) -> dict[str, object]:
    return {
        "title": "Import people",
        "job": job,
        "rejects": job.rejects[:SHOWN_REJECTS],
        "more_rejects": max(0, len(job.rejects) - SHOWN_REJECTS),
    }


@router.get(PATH + "/{job_id}", include_in_schema=False)
def status(request: Request, job_id: str, session: Staff) -> Response:
    job = _job(job_id, session.user)
    partial = request.headers.get("hx-request") == "true"
    return page(request, "import/_job.html" if partial else "import/job.html", _context(job))


@router.get(PATH + "/{job_id}/rejects.csv", include_in_schema=False)
def rejects(job_id: str, session: Staff) -> Response:
    job = _job(job_id, session.user)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "email", "reason"])
    for r in job.rejects:
        writer.writerow(r.cells())
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="rejected-rows.csv"',
            "Cache-Control": "no-store",
        },
    )
