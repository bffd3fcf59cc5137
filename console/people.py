"""People: find a person, and one person's page at ``/admin/subscribers/{public_id}`` (an opaque
id, never an address) with their timeline, what comes next for them, and what staff may do on
their behalf: pause, resume, change symptoms, export, erase.

Every view of a person's record (the page, an export) and every change is written to the audit
log, named by the public id only. Erasing needs the ops role and the address typed out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console.auth import OpsStaff, Staff
from console.deps import Db, Ports, Svc
from console.errors import NotFound
from console.render import error_page, page
from engagement.history import checkins_of, events_of
from staff import audit
from staff.roles import OPS
from storage import Database, utcnow
from subscribers import changes, directory, store
from subscribers.addresses import InvalidAddress, normalize
from subscribers.privacy import export_person
from subscribers.symptoms import GROUPS, RED_FLAGS, SYMPTOMS

PUBLIC_ID_LENGTH = 32
PAUSE_WEEKS = (1, 2, 4, 8, 12, 26)
TARGET = "subscriber"


def _no_such_person() -> NotFound:
    return NotFound(
        "No such person", "Nobody on the list has this record id (they may have been erased)."
    )


def _found(profile: store.Profile | None) -> store.Profile:
    """The person looked up; the console's 404 page when there is none."""
    if profile is None:
        raise _no_such_person()
    return profile


def timeline(
    record: dict[str, Any],
    events: list[dict[str, Any]],
    checkins: list[dict[str, Any]],
    stored: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Consent events, emails, provider events and check-ins in one list, newest first; an
    email the outbox transport stored (``stored``: send id → outbox message id) links to it."""
    stored = stored or {}
    items: list[dict[str, Any]] = []
    for c in record["consent_events"]:
        items.append(
            {
                "at": c["at"],
                "kind": "consent",
                "what": f"{c['purpose']}: {c['action']}",
                "detail": c.get("source") or "",
            }
        )
    for e in record.get("episodes", []):
        if e["episode"] > 1 and e.get("started_at"):
            items.append(
                {
                    "at": e["started_at"],
                    "kind": "new episode",
                    "what": f"{e['campaign_id']} · episode {e['episode']}",
                    "detail": "started again from the first step",
                }
            )
    for s in record.get("sends", []):
        version = s.get("content_version")
        label = f"{s['campaign_id']} · {s['step_id']}"
        if (s.get("episode") or 1) > 1:
            label += f" · episode {s['episode']}"
        if s.get("variant_id") and s["variant_id"] != "default":
            label += f" ({s['variant_id']})"
        items.append(
            {
                "at": s.get("sent_at") or s["created_at"],
                "kind": "email",
                "what": label,
                "detail": f"{s['status']}" + (f", content version {version}" if version else ""),
                "send": s,
                "href": (
                    f"/admin/outbox/{stored[s['send_id']]}" if s.get("send_id") in stored else ""
                ),
            }
        )
    for e in events:
        label = f"{e['campaign_id']} · {e['step_id']}"
        detail = "machine (not counted)" if e["machine"] else ""
        if e.get("bounce_class"):
            detail = f"{e['bounce_class']} bounce"
        at = e["at"].isoformat() if isinstance(e["at"], datetime) else str(e["at"])
        items.append({"at": at, "kind": e["kind"], "what": label, "detail": detail})
    for c in checkins:
        at = c["last_at"].isoformat() if isinstance(c["last_at"], datetime) else str(c["last_at"])
        items.append(
            {
                "at": at,
                "kind": "check-in",
                "what": f"{c['campaign_id']} · {c['step_id']}",
                "detail": f"answered “{c['value']}”",
            }
        )
    items.sort(key=lambda i: str(i["at"]), reverse=True)
    return items


router = APIRouter()


def list_url(query: directory.Query, search_id: str = "", after: str = "", size: int = 0) -> str:
    """The people list's address for these filters: status, group, review, the opaque search id
    and the page cursor (a public id), never the searched text (see :mod:`subscribers.directory`)."""
    params = {
        "status": query.status,
        "group": query.group,
        "review": "1" if query.review else "",
        "search": search_id,
        "size": str(size) if size and size != directory.PAGE else "",
        "after": after,
    }
    kept = {k: v for k, v in params.items() if v}
    return "/admin/subscribers" + (f"?{urlencode(kept)}" if kept else "")


def _size(raw: str) -> int:
    return int(raw) if raw in {str(n) for n in directory.PAGE_SIZES} else directory.PAGE


def results(
    request: Request,
    db: Database,
    query: directory.Query,
    *,
    partial: bool,
    search_id: str = "",
    after: str = "",
    size: int = directory.PAGE,
    expired: bool = False,
) -> Response:
    problems = query.problems()
    got = directory.Page([], 0, None)
    if not problems:
        with db.begin() as conn:
            got = directory.page_of(conn, query, limit=size, after=after)
    context = {
        "title": "People",
        "query": query,
        "problems": problems,
        "found": got.found,
        "total": got.total,
        "first_page": not after,
        "first_url": list_url(query, search_id, size=size) if after else "",
        "next_url": list_url(query, search_id, got.next_after, size) if got.next_after else "",
        "size": size,
        "sizes": directory.PAGE_SIZES,
        "search_id": search_id,
        "expired": expired,
        "statuses": directory.STATUSES,
        "groups": GROUPS,
        "erased": request.query_params.get("erased") == "1",
    }
    return page(request, "people/results.html" if partial else "people/find.html", context)


@router.get("/admin/subscribers", include_in_schema=False)
def find(
    request: Request,
    session: Staff,
    db: Db,
    status: str = "",
    group: str = "",
    review: str = "",
    search: str = "",
    after: str = "",
    size: str = "",
) -> Response:
    """People newest first, a page at a time, filtered by status and symptom group, or only
    those flagged for review; ``search`` is the opaque id of a text search made by POST (no
    personal data in the URL), ``after`` the public id the page starts after."""
    text, expired = "", False
    if search:
        with db.begin() as conn:
            found = directory.load_search(conn, search, utcnow())
        text, expired = (found or ""), found is None
    query = directory.Query(text=text, status=status, group=group, review=review == "1")
    return results(
        request,
        db,
        query,
        partial=False,
        search_id="" if expired else search,
        after=after[:PUBLIC_ID_LENGTH],
        size=_size(size),
        expired=expired,
    )


@router.post("/admin/subscribers", include_in_schema=False)
async def search(request: Request, session: Staff, db: Db) -> Response:
    """A search by address or name: the text is kept server-side under a short-lived id and the
    answer.s address (replacing the one in the history, or redirected to) carries only that id."""
    form = await request.form()
    query = directory.Query(
        text=str(form.get("q", ""))[:400],
        status=str(form.get("status", "")),
        group=str(form.get("group", "")),
        review=form.get("review") == "1",
    )
    size = _size(str(form.get("size", "")))
    partial = request.headers.get("hx-request") == "true"
    if query.problems():
        return results(request, db, query, partial=partial, size=size)
    search_id = ""
    if query.text.strip():  # a search by address or name views personal data
        now = utcnow()
        with db.begin() as conn:
            search_id = directory.save_search(conn, query.text, now)
            audit.record(
                conn,
                session.user,
                "subscriber.search",
                TARGET,
                "search",
                now,
                {"status": query.status, "group": query.group},
            )
    url = list_url(query, search_id, size=size)
    if not partial:
        return RedirectResponse(url, status_code=303)
    answer = results(request, db, query, partial=True, search_id=search_id, size=size)
    answer.headers["HX-Replace-Url"] = url
    return answer


def _symptom_groups() -> list[tuple[Any, list[Any]]]:
    return [(g, [s for s in SYMPTOMS if s.group == g.id]) for g in GROUPS if g.id != "red_flags"]


def person_form(
    request: Request,
    profile: store.Profile | None,
    typed: dict[str, Any],
    *,
    error: str = "",
    status: int = 200,
) -> Response:
    return page(
        request,
        "people/edit.html",
        {
            "title": "Edit a person" if profile else "Add a person",
            "profile": profile,
            "typed": typed,
            "groups": _symptom_groups(),
            "error": error,
        },
        status=status,
    )


@router.get("/admin/subscribers/new", include_in_schema=False)
def add_form(request: Request, session: Staff) -> Response:
    """Add one person (the import's checks and consent rule, for a single row)."""
    typed = {"email": "", "first_name": "", "timezone": "", "symptoms": set(), "consent": False}
    return person_form(request, None, typed)


@router.post("/admin/subscribers/new", include_in_schema=False)
async def add(request: Request, session: Staff, services: Svc) -> Response:
    return await _save(request, session, services, None)


@router.get("/admin/subscribers/{public_id}/edit", include_in_schema=False)
def edit_form(request: Request, public_id: str, session: Staff, db: Db) -> Response:
    with db.begin() as conn:
        profile = _found(store.profile_by_public_id(conn, public_id))
    typed = {
        "email": profile.email,
        "first_name": profile.first_name or "",
        "timezone": profile.timezone or "",
        "symptoms": set(profile.symptoms),
        "consent": profile.status == store.CONFIRMED,
    }
    return person_form(request, profile, typed)


@router.post("/admin/subscribers/{public_id}/edit", include_in_schema=False)
async def edit(request: Request, public_id: str, session: Staff, db: Db, services: Svc) -> Response:
    with db.begin() as conn:
        profile = _found(store.profile_by_public_id(conn, public_id))
    return await _save(request, session, services, profile)


async def _save(
    request: Request, session: Any, services: Any, profile: store.Profile | None
) -> Response:
    form = await request.form()
    chosen = {str(c) for c in form.getlist("symptoms")}
    typed = {
        # editing keeps the address: the record is the person's, not a new one
        "email": profile.email if profile else str(form.get("email", "")).strip()[:320],
        "first_name": str(form.get("first_name", ""))[:200],
        "timezone": str(form.get("timezone", "")).strip()[:64],
        "symptoms": chosen,
        "consent": form.get("consent") == "yes",
    }
    known = {s.code for s in SYMPTOMS} - RED_FLAGS
    if not chosen <= known:
        return person_form(
            request, profile, typed, error="Some symptoms were not recognised.", status=422
        )
    if profile is not None:  # warning signs they reported stay on record
        chosen = chosen | (set(profile.symptoms) & RED_FLAGS)
    save = services.save_person
    if save is None:
        raise NotFound("Not available", "This console was started without adding people.")
    fields = {
        "email": typed["email"],
        "first_name": typed["first_name"],
        "timezone": typed["timezone"],
        "symptoms": ";".join(sorted(chosen)),
        "consent": "yes" if typed["consent"] else "",
        "source": "console",
    }
    try:
        public_id, new = save(fields, session.user)
    except ValueError as exc:
        message = f"Not saved: {exc}. Nothing was changed."
        return person_form(request, profile, typed, error=message, status=422)
    return back(public_id, "added" if new else "edited")


@router.get("/admin/subscribers/{public_id}", include_in_schema=False)
def person(
    request: Request, public_id: str, session: Staff, ports: Ports, services: Svc
) -> Response:
    now = utcnow()
    with ports.db.begin() as conn:
        profile = _found(store.profile_by_public_id(conn, public_id))
        record = export_person(conn, profile.email, sections=ports.record_sections)
        assert record is not None
        events = events_of(conn, profile.id)
        checkins = checkins_of(conn, profile.id)
        audit.record(conn, session.user, "subscriber.view", TARGET, public_id, now)
    coming = services.upcoming(profile.id, now)
    return page(
        request,
        "person.html",
        {
            "title": "Subscriber record",
            "record": record,
            "public_id": public_id,
            "profile": profile,
            "timeline": timeline(record, events, checkins, services.outbox_of(profile.id)),
            "coming": coming,
            "names": services.campaign_names(),
            "paused": profile.paused_until is not None and profile.paused_until > now,
            "pause_weeks": PAUSE_WEEKS,
            "groups": _symptom_groups(),
            "may_erase": session.user.role == OPS,
            "message": request.query_params.get("done", ""),
        },
    )


def back(public_id: str, done: str) -> Response:
    return RedirectResponse(f"/admin/subscribers/{public_id}?done={done}", status_code=303)


@router.post("/admin/subscribers/{public_id}/pause", include_in_schema=False)
async def pause(request: Request, public_id: str, session: Staff, db: Db) -> Response:
    form = await request.form()
    weeks = str(form.get("weeks", ""))
    if weeks not in {str(w) for w in PAUSE_WEEKS}:
        return error_page(
            request, "Not paused", "Choose how many weeks to pause for. Nothing was changed.", 422
        )
    now = utcnow()
    with db.begin() as conn:
        profile = _found(store.profile_by_public_id(conn, public_id))
        until = now + timedelta(weeks=int(weeks))
        changes.set_pause(conn, profile.id, until, now)
        # No date and no health data in the log: it outlives an erasure (docs/privacy.md).
        audit.record(
            conn, session.user, "subscriber.pause", TARGET, public_id, now, {"weeks": int(weeks)}
        )
    return back(public_id, "paused")


@router.post("/admin/subscribers/{public_id}/resume", include_in_schema=False)
def resume(public_id: str, session: Staff, db: Db) -> Response:
    now = utcnow()
    with db.begin() as conn:
        profile = _found(store.profile_by_public_id(conn, public_id))
        changes.set_pause(conn, profile.id, None, now)
        audit.record(conn, session.user, "subscriber.resume", TARGET, public_id, now)
    return back(public_id, "resumed")


@router.post("/admin/subscribers/{public_id}/symptoms", include_in_schema=False)
async def symptoms(
    request: Request, public_id: str, session: Staff, db: Db, services: Svc
) -> Response:
    form = await request.form()
    chosen = {str(c) for c in form.getlist("symptoms")}
    known = {s.code for s in SYMPTOMS} - RED_FLAGS
    if not chosen <= known:
        return error_page(
            request,
            "Not changed",
            "Some symptom codes were not recognised. Nothing was changed.",
            422,
        )
    now = utcnow()
    with db.begin() as conn:
        profile = _found(store.profile_by_public_id(conn, public_id))
        new = changes.change_symptoms(conn, profile.id, chosen, now, source="staff")
        if new is None:
            return back(public_id, "unchanged")
        audit.record(
            conn,
            session.user,
            "subscriber.symptoms",
            TARGET,
            public_id,
            now,
            # How many codes changed, never which: the log outlives an erasure.
            {
                "added": len(set(new) - set(profile.symptoms)),
                "removed": len(set(profile.symptoms) - set(new)),
            },
        )
        if profile.status == store.CONFIRMED:
            services.enrol(conn, profile.id, now)
    return back(public_id, "symptoms")


@router.get("/admin/subscribers/{public_id}/export", include_in_schema=False)
def export(public_id: str, session: Staff, db: Db, services: Svc) -> Response:
    now = utcnow()
    with db.begin() as conn:
        profile = _found(store.profile_by_public_id(conn, public_id))
        audit.record(conn, session.user, "subscriber.export", TARGET, public_id, now)
    text = services.export_json(profile.email)
    if text is None:
        raise _no_such_person()
    return Response(
        text,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="subscriber-{public_id}.json"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/admin/subscribers/{public_id}/erase", include_in_schema=False)
def erase_form(request: Request, public_id: str, session: OpsStaff, db: Db) -> Response:
    with db.begin() as conn:
        _found(store.profile_by_public_id(conn, public_id))  # the 404 page when not there
    return page(
        request,
        "people/erase.html",
        {"title": "Erase a person", "public_id": public_id, "error": None, "typed": ""},
    )


@router.post("/admin/subscribers/{public_id}/erase", include_in_schema=False)
async def erase(
    request: Request, public_id: str, session: OpsStaff, db: Db, services: Svc
) -> Response:
    form = await request.form()
    typed = str(form.get("confirm_email", "")).strip()[:320]
    with db.begin() as conn:
        profile = _found(store.profile_by_public_id(conn, public_id))
    try:
        matches = normalize(typed)[1] == normalize(profile.email)[1]
    except InvalidAddress:
        matches = False
    if not matches:
        return page(
            request,
            "people/erase.html",
            {
                "title": "Erase a person",
                "public_id": public_id,
                "error": "That is not this person's address. Nothing was erased.",
                "typed": typed,
            },
            status=422,
        )
    # The audit entry is written in the erasure's own transaction (Services.erase).
    services.erase(profile.email, utcnow(), session.user)
    return RedirectResponse("/admin/subscribers?erased=1", status_code=303)
