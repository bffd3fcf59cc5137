"""A person's page: ``/admin/subscribers/{public_id}`` (an opaque id, never an address).

Every view is written to the audit log: health data is read only on the record.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.auth import Staff
from console.ports import ConsolePorts
from console.render import page
from staff import audit
from storage import utcnow
from subscribers import store
from subscribers.privacy import export_person

PUBLIC_ID_LENGTH = 32


def router(ports: ConsolePorts) -> APIRouter:
    r = APIRouter()

    @r.get("/admin/subscribers/{public_id}", include_in_schema=False)
    def person(request: Request, public_id: str, session: Staff) -> Response:
        now = utcnow()
        record = None
        with ports.db.begin() as conn:
            sid = store.by_public_id(conn, public_id) if len(public_id) <= 64 else None
            profile = store.profiles(conn, [sid]).get(sid) if sid is not None else None
            if profile is not None:
                record = export_person(conn, profile.email, sections=ports.record_sections)
                audit.record(conn, session.user, "subscriber.view", "subscriber", public_id, now)
        if record is None:
            return page(
                request,
                "error.html",
                {
                    "title": "No such person",
                    "message": "Nobody on the list has this record id (they may have been erased).",
                },
                status=404,
            )
        return page(
            request,
            "person.html",
            {"title": "Subscriber record", "record": record, "public_id": public_id},
        )

    return r
