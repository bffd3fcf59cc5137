"""Follow-ups: the people who reported a warning sign or a worse check-in, and what the clinic
did about it (:mod:`engagement.followups`). Clinicians and ops only: the page shows what each
person reported, which marketing has no need to see.

- ``GET /admin/followups``: open follow-ups (overdue first) with a form to close each as
  "contacted" or "no action needed" with a note, and the latest closed ones;
- ``POST /admin/followups/{id}``: close one (audited in the same transaction);
- ``GET /admin/followups/summary``: the dashboard's count (an htmx fragment).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.auth import Staff, require_role
from console.deps import Db
from console.render import environment, page
from engagement import followups
from staff import audit
from staff.roles import CLINICIAN, at_least
from storage import utcnow

router = APIRouter()

# Closed follow-ups stay on the page this long (the person's record keeps them all).
RECENT = timedelta(days=30)


@router.get("/admin/followups", include_in_schema=False)
def listing(request: Request, session: Staff, db: Db) -> Response:
    require_role(session, CLINICIAN)
    now = utcnow()
    with db.begin() as conn:
        waiting = followups.open_ones(conn)
        closed = [
            f for f in followups.closed_ones(conn) if f.closed_at and f.closed_at > now - RECENT
        ]
    return page(
        request,
        "followups/list.html",
        {
            "title": "Follow-ups",
            "waiting": waiting,
            "closed": closed,
            "now": now,
            "outcomes": followups.OUTCOMES,
            "done": request.query_params.get("done"),
            "error": None,
        },
    )


@router.post("/admin/followups/{public_id}", include_in_schema=False)
def close(
    request: Request,
    public_id: str,
    session: Staff,
    db: Db,
    outcome: str = Form(""),
    note: str = Form(""),
) -> Response:
    require_role(session, CLINICIAN)
    now = utcnow()
    try:
        with db.begin() as conn:
            followups.acknowledge(
                conn,
                public_id,
                outcome,
                note,
                session.user.email,
                audit.writer(session.user, now),
                now,
            )
    except followups.FollowupError as exc:
        with db.begin() as conn:
            waiting = followups.open_ones(conn)
        return page(
            request,
            "followups/list.html",
            {
                "title": "Follow-ups",
                "waiting": waiting,
                "closed": [],
                "now": now,
                "outcomes": followups.OUTCOMES,
                "done": None,
                "error": str(exc),
                "failed_id": public_id,
                "kept_note": note,
            },
            status=409 if "already closed" in str(exc) else 422,
        )
    return RedirectResponse("/admin/followups?done=1", status_code=303)


@router.get("/admin/followups/summary", include_in_schema=False)
def summary(request: Request, session: Staff, db: Db) -> Response:
    """The dashboard's figure: open follow-ups and how many are past due (nothing for
    marketing)."""
    if not at_least(session.user.role, CLINICIAN):
        return HTMLResponse("")
    with db.begin() as conn:
        counts = followups.counts(conn, utcnow())
    html = environment().get_template("followups/_count.html").render(counts=counts)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
