"""Campaign pages: the list, one campaign (versions, steps in plain words, journey), the step
editor with its live preview, and the workflow actions (submit, review, activate, retire,
test send). Every change is written to the audit log, with before/after for content."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from campaigns import authoring, versions
from campaigns.authoring import AuthoringError, Parts
from campaigns.journey import journey
from campaigns.rendering import render_variant
from campaigns.review import Actor, Audit, StaleRevision, is_reviewer
from campaigns.versions import Version, VersionError
from console.auth import Forbidden, Staff
from console.ports import ConsolePorts
from console.preview import Persona, preview
from console.render import error_page, page
from console.reviewing import actor as _actor
from console.reviewing import auditor
from console.words import delay, rule
from core.headers import PREHEADER_MAX, SUBJECT_MAX, header_problem
from staff import audit
from staff.sessions import Session
from storage import utcnow
from subscribers.segments import Facts
from subscribers.symptoms import GROUPS, SYMPTOMS, unknown_codes
from templates import Renderer

BASE = "/admin/campaigns"
PERSONA_SYMPTOMS = [s for s in SYMPTOMS if s.group != "red_flags"]


def _persona(symptoms: list[str], first_name: str) -> Persona:
    codes = frozenset(c for c in symptoms if c) - frozenset(unknown_codes(frozenset(symptoms)))
    return Persona(codes, first_name.strip()[:100] or None)


def review_label(v: Version, now: datetime) -> tuple[str, str]:
    """(text, tone) for a version's clinical review, as the console shows it everywhere."""
    if not v.clinic_reviewed:
        return "Not yet reviewed by a clinician at your clinic", "warn"
    if v.review_due(now):
        return f"Review overdue since {v.review_due_at:%d %b %Y}", "danger"
    return f"Reviewed by {v.reviewed_by} on {v.reviewed_at:%d %b %Y}", "ok"


def router(ports: ConsolePorts) -> APIRouter:
    r = APIRouter()
    db = ports.db
    assert ports.renderer is not None
    renderer: Renderer = ports.renderer

    def load(campaign_id: str, version_id: str) -> Version:
        with db.begin() as conn:
            v = versions.get(conn, version_id) if len(version_id) <= 32 else None
        if v is None or v.campaign_id != campaign_id:
            raise Forbidden("There is no such version of this campaign.")
        return v

    def back(campaign_id: str, note: str = "") -> RedirectResponse:
        suffix = f"?note={note}" if note else ""
        return RedirectResponse(f"{BASE}/{campaign_id}{suffix}", status_code=303)

    def record(
        session: Session, action: str, v: Version, detail: dict[str, Any] | None = None
    ) -> None:
        with db.begin() as conn:
            audit.record(
                conn,
                session.user,
                action,
                "campaign_version",
                v.id,
                utcnow(),
                {"campaign": v.campaign_id, "number": v.number, **(detail or {})},
            )

    # -- pages -----------------------------------------------------------------------------
    @r.get(BASE, include_in_schema=False)
    def campaign_list(request: Request, session: Staff) -> Response:
        now = utcnow()
        rows = []
        with db.begin() as conn:
            for cid in versions.campaign_ids(conn):
                history = versions.versions_of(conn, cid)
                active = next((v for v in history if v.state == versions.ACTIVE), None)
                pending = [
                    v
                    for v in history
                    if v.state in (versions.DRAFT, versions.IN_REVIEW, versions.APPROVED)
                ]
                name = cid
                steps = 0
                if active is not None:
                    parsed, _ = versions.parse(cid, active.files, renderer)
                    if parsed is not None:
                        name, steps = parsed.meta.name, len(parsed.steps)
                rows.append(
                    {
                        "id": cid,
                        "name": name,
                        "steps": steps,
                        "active": active,
                        "pending": pending,
                        "review": review_label(active, now)
                        if active
                        else ("Nothing active", "warn"),
                    }
                )
        return page(request, "campaigns.html", {"title": "Campaigns", "rows": rows})

    @r.get(BASE + "/{campaign_id}", include_in_schema=False)
    def campaign_page(
        request: Request, campaign_id: str, session: Staff, note: str = ""
    ) -> Response:
        now = utcnow()
        with db.begin() as conn:
            history = versions.versions_of(conn, campaign_id) if len(campaign_id) <= 64 else []
        if not history:
            return error_page(
                request, "No such campaign", "There is no campaign with this id.", 404
            )
        active = next((v for v in history if v.state == versions.ACTIVE), None)
        working = (
            next((v for v in history if v.state == versions.DRAFT), None) or active or history[0]
        )
        parsed, problems = versions.parse(campaign_id, working.files, renderer)
        steps = []
        order = authoring.steps(working.files)
        for i, name in enumerate(order):
            step = (
                next((s for s in parsed.steps if s.default.file.endswith("/" + name)), None)
                if parsed
                else None
            )
            steps.append(
                {
                    "file": name,
                    "number": i + 1,
                    "subject": step.default.subject
                    if step
                    else "(cannot be read: see the problems)",
                    "delay": delay(step.delay_days, i == 0) if step else "",
                    "who": rule(step.when) if step else "",
                    "variants": [
                        {"id": v.id, "file": v.file.rsplit("/", 1)[-1], "who": rule(v.when)}
                        for v in (step.variants if step else ())
                    ],
                }
            )
        return page(
            request,
            "campaign.html",
            {
                "title": parsed.meta.name if parsed else campaign_id,
                "campaign_id": campaign_id,
                "audience": rule(parsed.meta.audience) if parsed else "",
                "history": history,
                "active": active,
                "working": working,
                "steps": steps,
                "problems": problems,
                "now": now,
                "review_label": review_label,
                "may_approve": is_reviewer(session.user.role),
                "note": note[:200],
                "groups": GROUPS,
                "symptoms": PERSONA_SYMPTOMS,
            },
        )

    @r.get(BASE + "/{campaign_id}/journey", include_in_schema=False)
    def journey_page(
        request: Request,
        campaign_id: str,
        session: Staff,
        symptoms: Annotated[list[str] | None, Query()] = None,
        first_name: Annotated[str, Query(max_length=100)] = "",
    ) -> Response:
        """The week-by-week timeline for a persona, from the same code as
        ``clinicmail campaigns journey``, for the working version."""
        with db.begin() as conn:
            history = versions.versions_of(conn, campaign_id) if len(campaign_id) <= 64 else []
        if not history:
            return error_page(
                request, "No such campaign", "There is no campaign with this id.", 404
            )
        working = next((v for v in history if v.state == versions.DRAFT), None) or next(
            (v for v in history if v.state == versions.ACTIVE), history[0]
        )
        persona = _persona(list(symptoms or []), first_name)
        parsed, problems = versions.parse(campaign_id, working.files, renderer)
        result = journey(parsed, persona.symptoms) if parsed is not None else None
        return page(
            request,
            "journey.html",
            {
                "title": "Journey",
                "campaign_id": campaign_id,
                "working": working,
                "persona": persona,
                "journey": result,
                "problems": problems,
                "groups": GROUPS,
                "symptoms": PERSONA_SYMPTOMS,
            },
        )

    @r.get(BASE + "/{campaign_id}/versions/{version_id}/files/{name}", include_in_schema=False)
    def editor(
        request: Request, campaign_id: str, version_id: str, name: str, session: Staff
    ) -> Response:
        v = load(campaign_id, version_id)
        if name not in v.files or name == "campaign.yaml":
            return error_page(request, "No such step", "This version has no such step file.", 404)
        try:
            parts = authoring.split(v.files[name])
        except AuthoringError as exc:
            parts = Parts("", "", v.files[name], f"# {exc}")
        return editor_page(request, campaign_id, v, name, parts, v.files)

    def editor_page(
        request: Request,
        campaign_id: str,
        v: Version,
        name: str,
        parts: Parts,
        files: dict[str, str],
        *,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        shown = preview(renderer, campaign_id, files, name, Persona(), ports.base_url)
        return page(
            request,
            "editor.html",
            {
                "error": error,
                "title": f"Edit {name}",
                "campaign_id": campaign_id,
                "version": v,
                "name": name,
                "parts": parts,
                "preview": shown,
                "persona": Persona(),
                "width": "desktop",
                "groups": GROUPS,
                "symptoms": PERSONA_SYMPTOMS,
            },
            status=status,
        )

    def edited_files(
        v: Version, name: str, subject: str, preheader: str, body: str, settings: str
    ) -> dict[str, str]:
        files = dict(v.files)
        files[name] = authoring.compose(Parts(subject, preheader, body, settings))
        return files

    @r.post(BASE + "/{campaign_id}/versions/{version_id}/preview", include_in_schema=False)
    def live_preview(
        request: Request,
        campaign_id: str,
        version_id: str,
        session: Staff,
        name: str = Form(...),
        subject: str = Form("", max_length=500),
        preheader: str = Form("", max_length=500),
        body: str = Form("", max_length=100_000),
        settings: str = Form("", max_length=20_000),
        persona_symptoms: Annotated[list[str] | None, Form()] = None,
        persona_first_name: str = Form("", max_length=100),
        width: str = Form("desktop"),
    ) -> Response:
        """The preview pane for unsaved text (htmx swaps it in as the author types)."""
        v = load(campaign_id, version_id)
        if name not in v.files:
            raise Forbidden("This version has no such step file.")
        files = edited_files(v, name, subject, preheader, body, settings)
        persona = _persona(persona_symptoms or [], persona_first_name)
        shown = preview(renderer, campaign_id, files, name, persona, ports.base_url)
        return page(
            request,
            "_preview.html",
            {
                "title": "Preview",
                "preview": shown,
                "width": "phone" if width == "phone" else "desktop",
                "persona": persona,
            },
        )

    def stale(request: Request, exc: StaleRevision, name: str, mine: str) -> Response:
        """A save from an out-of-date page: refused, with the other person's change shown."""
        current = exc.current
        theirs = current.files.get(name, "") if isinstance(current, Version) else ""
        return page(
            request,
            "stale.html",
            {
                "title": "Not saved: someone else changed this step",
                "message": str(exc),
                "theirs": theirs,
                "mine": mine,
                "updated_at": current.updated_at,
                "back": f"{BASE}/{current.campaign_id}/versions/{current.id}/files/{name}"
                if isinstance(current, Version)
                else BASE,
            },
            status=409,
        )

    @r.post(BASE + "/{campaign_id}/versions/{version_id}/files/{name}", include_in_schema=False)
    def save(
        request: Request,
        campaign_id: str,
        version_id: str,
        name: str,
        session: Staff,
        subject: str = Form("", max_length=500),
        preheader: str = Form("", max_length=500),
        body: str = Form("", max_length=100_000),
        settings: str = Form("", max_length=20_000),
        revision: int | None = Form(None),
    ) -> Response:
        v = load(campaign_id, version_id)
        if name not in v.files or name == "campaign.yaml":
            raise Forbidden("This version has no such step file.")
        files = edited_files(v, name, subject, preheader, body, settings)
        # A subject or preheader that cannot be an email header is refused now, field named,
        # never first at send time (core.headers).
        for field, text, limit in (
            ("subject", subject, SUBJECT_MAX),
            ("preheader", preheader, PREHEADER_MAX),
        ):
            problem = header_problem(text, max_length=limit)
            if problem:
                parts = Parts(subject, preheader, body, settings)
                return editor_page(
                    request,
                    campaign_id,
                    v,
                    name,
                    parts,
                    v.files,
                    error=f"Not saved: the {field} {problem}.",
                    status=422,
                )
        before = v.files[name]
        try:
            with db.begin() as conn:
                saved = versions.save_draft(
                    conn,
                    v,
                    files,
                    _actor(session),
                    utcnow(),
                    audit=auditor(session),
                    renderer=renderer,
                    expected_revision=revision,
                    detail={"file": name, "before": before, "after": files[name]},
                )
        except StaleRevision as exc:
            return stale(request, exc, name, files[name])
        except versions.TemplateRefused as exc:  # the text stays; the preview shows the finding
            parts = Parts(subject, preheader, body, settings)
            return editor_page(
                request, campaign_id, v, name, parts, files, error=str(exc), status=422
            )
        except VersionError as exc:
            raise Forbidden(str(exc)) from None
        return RedirectResponse(
            f"{BASE}/{campaign_id}/versions/{saved.id}/files/{name}?saved=1", status_code=303
        )

    # -- structure -------------------------------------------------------------------------
    def change_files(
        session: Session, v: Version, files: dict[str, str], action: str, detail: dict[str, Any]
    ) -> Version:
        try:
            with db.begin() as conn:
                return versions.save_draft(
                    conn,
                    v,
                    files,
                    _actor(session),
                    utcnow(),
                    audit=auditor(session),
                    renderer=renderer,
                    action=action.removeprefix("content."),
                    detail=detail,
                )
        except VersionError as exc:
            raise Forbidden(str(exc)) from None

    @r.post(BASE + "/{campaign_id}/drafts", include_in_schema=False)
    def start_draft(campaign_id: str, session: Staff) -> Response:
        try:
            with db.begin() as conn:
                versions.start_draft(
                    conn, campaign_id, _actor(session), utcnow(), audit=auditor(session)
                )
        except VersionError as exc:
            raise Forbidden(str(exc)) from None
        return back(campaign_id)

    @r.post(BASE + "/{campaign_id}/versions/{version_id}/steps", include_in_schema=False)
    def add_step(
        campaign_id: str, version_id: str, session: Staff, title: str = Form(..., max_length=150)
    ) -> Response:
        v = load(campaign_id, version_id)
        try:
            files, name = authoring.add_step(v.files, title)
        except AuthoringError as exc:
            raise Forbidden(str(exc)) from None
        saved = change_files(session, v, files, "content.add_step", {"file": name})
        return RedirectResponse(
            f"{BASE}/{campaign_id}/versions/{saved.id}/files/{name}", status_code=303
        )

    @r.post(
        BASE + "/{campaign_id}/versions/{version_id}/files/{name}/move", include_in_schema=False
    )
    def move_step(
        campaign_id: str, version_id: str, name: str, session: Staff, direction: str = Form(...)
    ) -> Response:
        v = load(campaign_id, version_id)
        try:
            files = authoring.move_step(v.files, name, -1 if direction == "up" else 1)
        except AuthoringError as exc:
            raise Forbidden(str(exc)) from None
        change_files(session, v, files, "content.move_step", {"file": name, "direction": direction})
        return back(campaign_id)

    @r.post(
        BASE + "/{campaign_id}/versions/{version_id}/files/{name}/retire", include_in_schema=False
    )
    def retire_step(campaign_id: str, version_id: str, name: str, session: Staff) -> Response:
        v = load(campaign_id, version_id)
        try:
            files = authoring.retire_step(v.files, name)
        except AuthoringError as exc:
            raise Forbidden(str(exc)) from None
        change_files(
            session, v, files, "content.retire_step", {"file": name, "before": v.files[name]}
        )
        return back(campaign_id)

    @r.post(BASE + "/{campaign_id}/versions/{version_id}/variants", include_in_schema=False)
    def add_variant(
        campaign_id: str,
        version_id: str,
        session: Staff,
        step: str = Form(...),
        variant: str = Form(..., max_length=40),
        symptoms: Annotated[list[str] | None, Form()] = None,
    ) -> Response:
        v = load(campaign_id, version_id)
        codes = sorted(set(symptoms or []))
        if not codes or unknown_codes(frozenset(codes)):
            raise Forbidden("Choose at least one symptom that selects this variant.")
        try:
            files, name = authoring.add_variant(v.files, step, variant, {"has_any": codes})
        except AuthoringError as exc:
            raise Forbidden(str(exc)) from None
        saved = change_files(
            session, v, files, "content.add_variant", {"file": name, "symptoms": codes}
        )
        return RedirectResponse(
            f"{BASE}/{campaign_id}/versions/{saved.id}/files/{name}", status_code=303
        )

    # -- workflow --------------------------------------------------------------------------
    def move(
        campaign_id: str,
        version_id: str,
        session: Session,
        change: Callable[[Connection, Version, datetime, Audit], Version],
    ) -> Version:
        """One review-state change of a version, audited in its transaction (by
        :mod:`campaigns.review`); a refused one is a 403."""
        v = load(campaign_id, version_id)
        try:
            with db.begin() as conn:
                return change(conn, v, utcnow(), auditor(session))
        except VersionError as exc:
            raise Forbidden(str(exc)) from None

    @r.post(BASE + "/{campaign_id}/versions/{version_id}/submit", include_in_schema=False)
    def submit(campaign_id: str, version_id: str, session: Staff) -> Response:
        move(
            campaign_id,
            version_id,
            session,
            lambda conn, v, now, audit: versions.submit(conn, v, renderer, now, audit=audit),
        )
        return back(campaign_id, "submitted")

    Decide = Callable[[Connection, Version, Actor, str, datetime, Audit], Version]

    def clinical_review(path: str, decide: Decide, done: str) -> None:
        """A clinician's decision on a version, with its note (approve, request changes); who
        may take it is the workflow's rule (campaigns.review)."""

        @r.post(BASE + "/{campaign_id}/versions/{version_id}/" + path, include_in_schema=False)
        def review(
            campaign_id: str,
            version_id: str,
            session: Staff,
            note: str = Form("", max_length=2000),
        ) -> Response:
            move(
                campaign_id,
                version_id,
                session,
                lambda conn, v, now, audit: decide(conn, v, _actor(session), note, now, audit),
            )
            return back(campaign_id, done)

    clinical_review(
        "approve",
        lambda conn, v, actor, note, now, audit: versions.approve(
            conn, v, actor, note, now, ports.review_interval, audit=audit
        ),
        "approved",
    )
    clinical_review(
        "request-changes",
        lambda conn, v, actor, note, now, audit: versions.request_changes(
            conn, v, actor, note, now, audit=audit
        ),
        "",
    )

    @r.post(BASE + "/{campaign_id}/versions/{version_id}/activate", include_in_schema=False)
    def activate(campaign_id: str, version_id: str, session: Staff) -> Response:
        move(
            campaign_id,
            version_id,
            session,
            lambda conn, v, now, audit: versions.activate(conn, v, now, audit=audit),
        )
        ports.content_changed()
        return back(campaign_id, "activated")

    @r.post(BASE + "/{campaign_id}/versions/{version_id}/retire", include_in_schema=False)
    def retire(campaign_id: str, version_id: str, session: Staff) -> Response:
        move(
            campaign_id,
            version_id,
            session,
            lambda conn, v, now, audit: versions.retire(conn, v, now, audit=audit),
        )
        ports.content_changed()
        return back(campaign_id)

    @r.post(BASE + "/{campaign_id}/versions/{version_id}/test-send", include_in_schema=False)
    def test_send(
        campaign_id: str,
        version_id: str,
        session: Staff,
        name: str = Form(...),
        persona_symptoms: Annotated[list[str] | None, Form()] = None,
        persona_first_name: str = Form("", max_length=100),
    ) -> Response:
        """Send the saved step, as the persona would get it, to the signed-in staff member only:
        marked as a test, outside the ledger, so never in stats."""
        v = load(campaign_id, version_id)
        persona = _persona(persona_symptoms or [], persona_first_name)
        parsed, _ = versions.parse(campaign_id, v.files, renderer)
        if parsed is None:
            raise Forbidden("Fix the problems shown before sending a test.")
        stem = name.split(".", 1)[0]
        step = next((s for s in parsed.steps if s.default.file.endswith("/" + stem + ".md")), None)
        if step is None:
            raise Forbidden("This version has no such step.")
        variant = step.variant_for(Facts(symptoms=persona.symptoms))
        rendered = render_variant(renderer, parsed, variant)
        rendered = type(rendered)(
            subject="[Test] " + rendered.subject,
            html=rendered.html,
            text=rendered.text,
            fields=rendered.fields,
        )
        values = {
            "first_name": persona.first_name or "there",
            "unsubscribe_url": f"{ports.base_url}/unsubscribe/TEST",
            "preferences_url": f"{ports.base_url}/preferences/TEST",
            "checkin_url": f"{ports.base_url}/checkin/TEST",
        }
        outcome = ports.send_test(session.user.email, rendered, values)
        record(
            session,
            "content.test_send",
            v,
            {"file": name, "variant": variant.id, "outcome": outcome},
        )
        return RedirectResponse(
            f"{BASE}/{campaign_id}/versions/{v.id}/files/{name}?sent={outcome}", status_code=303
        )

    return r
