"""Campaign pages: the list, one campaign (versions, steps in plain words, journey), the step
editor with its live preview, and the workflow actions (submit, review, activate, retire,
test send). Every change is written to the audit log in the change's own transaction, with
before/after for content.

A request the workflow or the text refuses (a step that cannot be added, a version that is no
longer a draft, problems to fix first) is answered 422 with the page again, what was typed
still in it; 403 is only for a role that may not act (approving, retiring live content).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from campaigns import authoring, enrollment, versions
from campaigns.authoring import AuthoringError, Parts
from campaigns.journey import journey
from campaigns.rendering import render_variant
from campaigns.review import ReviewError, StaleRevision, is_reviewer, may_approve, may_review
from campaigns.versions import Version, VersionError
from console import rule_builder
from console.auth import Staff, require_role
from console.deps import Db, Ports, Render
from console.errors import Forbidden, NotFound
from console.ports import ConsolePorts
from console.preview import Persona, box_line, preview
from console.render import error_page, flash, local_time, page
from console.reviewing import actor as _actor
from console.reviewing import auditor
from console.rule_builder import Builder
from console.words import delay, file_title, rule
from core import yamltext
from core.errors import InputError
from core.headers import PREHEADER_MAX, SUBJECT_MAX, header_problem
from staff import audit
from staff.roles import CLINICIAN
from staff.sessions import Session
from storage import Database, utcnow
from subscribers.segments import Facts, parse_rule
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


# What the campaign page says after each change (``?note=``).
NOTES = {
    "draft": "A draft was started from the live version.",
    "submitted": "Submitted: a clinician will review it.",
    "approved": "Approved.",
    "changes": "Sent back with your note: changes requested.",
    "activated": "Activated: this version is what people get from now on.",
    "retired": "Retired.",
    "restored": "Restored as a new draft: it needs a clinician's review before it goes live.",
    "step-moved": "Step moved.",
    "step-retired": "Step retired from the draft.",
}


def load(db: Database, campaign_id: str, version_id: str) -> Version:
    with db.begin() as conn:
        v = versions.get(conn, version_id) if len(version_id) <= 32 else None
    if v is None or v.campaign_id != campaign_id:
        raise NotFound("No such version", "There is no such version of this campaign.")
    return v


def back(campaign_id: str, note: str = "") -> RedirectResponse:
    suffix = f"?note={note}" if note else ""
    return RedirectResponse(f"{BASE}/{campaign_id}{suffix}", status_code=303)


def placed(p: Any, files: dict[str, str]) -> dict[str, str]:
    """A loader problem as the campaign page names it: the email by its title, then where in
    its editor's boxes (the same line numbers as the editor's findings)."""
    file = p.file.rsplit("/", 1)[-1]
    if file == "campaign.yaml" or file not in files:
        where = "Campaign settings" if file == "campaign.yaml" else file_title(file)
        return {"where": where + (f", line {p.line}" if p.line else ""), "message": p.message}
    box = box_line(files[file], p.line)
    return {"where": f"“{step_title(files[file], file)}”: {box.lower()}", "message": p.message}


def campaign_view(
    request: Request,
    db: Database,
    renderer: Renderer,
    session: Session,
    campaign_id: str,
    *,
    note: str = "",
    error: str | None = None,
    typed: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    """One campaign's page; with ``error`` (422) it keeps what was typed in its forms."""
    now = utcnow()
    with db.begin() as conn:
        history = versions.versions_of(conn, campaign_id) if len(campaign_id) <= 64 else []
        enrolled = enrollment.active_count(conn, campaign_id) if history else 0
    if not history:
        return error_page(request, "No such campaign", "There is no campaign with this id.", 404)
    active = next((v for v in history if v.state == versions.ACTIVE), None)
    working = next((v for v in history if v.state == versions.DRAFT), None) or active or history[0]
    parsed, problems = versions.parse(campaign_id, working.files, renderer)
    steps = []
    for i, name in enumerate(authoring.steps(working.files)):
        step = (
            next((s for s in parsed.steps if s.default.file.endswith("/" + name)), None)
            if parsed
            else None
        )
        steps.append(
            {
                "file": name,
                "number": i + 1,
                "subject": step.default.subject if step else "(cannot be read: see the problems)",
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
            "problems": [placed(p, working.files) for p in problems],
            "now": now,
            "review_label": review_label,
            "may_approve": is_reviewer(session.user.role),
            "may_retire_live": session.user.role in (CLINICIAN, "ops"),
            "enrolled": enrolled,
            "note": NOTES.get(note, ""),
            "error": error,
            "typed": typed or {},
            "groups": GROUPS,
            "symptoms": PERSONA_SYMPTOMS,
        },
        status=status,
    )


def step_title(text: str, name: str) -> str:
    """What staff call a step or variant: its subject, else words from its file name."""
    try:
        subject = authoring.split(text).subject.strip()
    except AuthoringError:
        subject = ""
    return subject or file_title(name)


def earlier_steps(files: dict[str, str], name: str) -> tuple[bool, list[tuple[str, str]]]:
    """(is this the first step, [(step id, title)] of the steps before it)."""
    order = authoring.steps(files)
    if name not in order:
        return False, []
    before = order[: order.index(name)]
    return not before, [
        (n.removesuffix(".md").split("-", 1)[1], step_title(files[n], n)) for n in before
    ]


def settings_words(settings: str, first: bool, titles: dict[str, str]) -> str | None:
    """A step's settings in one sentence ("Sent 7 days after the one before, to people …")."""
    try:
        data = yamltext.safe_load(settings) if settings.strip() else {}
        data = data if isinstance(data, dict) else {}
        when = parse_rule(data["when"]) if data.get("when") is not None else None
        days = int(data.get("delay_days", 7))
    except Exception:  # unreadable settings: the advanced view's findings say why
        return None
    return f"sent {delay(days, first)}, to {rule(when, titles)}."


def editor_page(
    request: Request,
    ports: ConsolePorts,
    renderer: Renderer,
    campaign_id: str,
    v: Version,
    name: str,
    parts: Parts,
    files: dict[str, str],
    *,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
    typed: StepForm | None = None,
    field_errors: dict[str, str] | None = None,
) -> Response:
    """The step editor. A step (not a variant) has its settings as form fields (delay,
    check-in, who gets it) over the same YAML, which stays open in an "Advanced" view."""
    shown = preview(renderer, campaign_id, files, name, Persona(), ports.base_url)
    is_step = name in authoring.steps(files)
    first, earlier = earlier_steps(files, name)
    builder = rule_builder.settings_builder(parts.settings) if is_step else None
    snapshot = builder.snapshot() if builder else ""
    if typed is not None and typed.builder is not None and builder is not None:
        builder, snapshot = typed.builder, typed.snapshot
    titles = {f"{campaign_id}/{sid}": title for sid, title in earlier}
    return page(
        request,
        "editor.html",
        {
            "error": error,
            "done": done,
            "title": f"Edit “{step_title(files.get(name, ''), name)}”",
            "step_title": step_title(files.get(name, ""), name),
            "campaign_id": campaign_id,
            "version": v,
            "name": name,
            "parts": parts,
            "preview": shown,
            "persona": Persona(),
            "width": "desktop",
            "groups": GROUPS,
            "symptoms": PERSONA_SYMPTOMS,
            "step_form": is_step,
            "first_step": first,
            "builder": builder,
            "builder_snapshot": snapshot,
            "rule_options": rule_builder.options(
                campaign_id, earlier, builder.conditions if builder else ()
            ),
            "field_errors": field_errors or {},
            "summary": settings_words(parts.settings, first, titles) if is_step else None,
        },
        status=status,
    )


@dataclass(frozen=True)
class StepForm:
    """The step settings form as posted (None: the page had no form, e.g. a variant)."""

    builder: Builder | None
    snapshot: str


def step_form(
    builder_snapshot: str = Form("", max_length=20_000),
    rule_join: str = Form("all", max_length=10),
    cond: Annotated[list[str] | None, Form()] = None,
    cond_sense: Annotated[list[str] | None, Form()] = None,
    rule_advanced: str = Form("", max_length=5),
    delay_days: str = Form("", max_length=20),
    checkin: str = Form("", max_length=5),
) -> StepForm:
    if not builder_snapshot:
        return StepForm(None, "")
    built = rule_builder.form_builder(
        rule_join,
        cond or [],
        cond_sense or [],
        advanced=rule_advanced == "1",
        delay_days=delay_days,
        checkin=checkin == "1",
    )
    return StepForm(built, builder_snapshot)


StepFields = Annotated[StepForm, Depends(step_form)]


def _fields(parts: Parts) -> tuple[str, str, str, str]:
    return parts.subject, parts.preheader, parts.body, parts.settings


def with_form(parts: Parts, form: StepForm) -> tuple[Parts, dict[str, str]]:
    """The editor's fields with the settings form written into the YAML (only what the person
    changed in the form); errors by field, the YAML unchanged, when the form is refused."""
    if form.builder is None:
        return parts, {}
    settings, errors = rule_builder.merge(parts.settings, form.snapshot, form.builder)
    return Parts(parts.subject, parts.preheader, parts.body, settings), errors


def edited_files(
    v: Version, name: str, subject: str, preheader: str, body: str, settings: str
) -> dict[str, str]:
    files = dict(v.files)
    files[name] = authoring.compose(Parts(subject, preheader, body, settings))
    return files


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


class Refused(InputError):
    """The workflow or the authoring rules refused a change: said on a 422 page."""


@contextmanager
def refusals() -> Iterator[None]:
    """Turn the domain's refusals (plain-words messages) into :class:`Refused`."""
    try:
        yield
    except (VersionError, AuthoringError) as exc:
        message = str(exc)
        raise Refused(message[:1].upper() + message[1:] + ".") from None


def change_files(
    db: Database,
    renderer: Renderer,
    session: Session,
    v: Version,
    files: dict[str, str],
    action: str,
    detail: dict[str, Any],
) -> Version:
    """A structural change of a draft (add, move, retire a step; add a variant), audited in
    its transaction."""
    with refusals(), db.begin() as conn:
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


router = APIRouter()


# -- pages -----------------------------------------------------------------------------------
def campaign_rows(db: Database, renderer: Renderer) -> list[dict[str, Any]]:
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
            name, steps = cid, 0
            shown = active or (pending[-1] if pending else None)
            if shown is not None:
                parsed, _ = versions.parse(cid, shown.files, renderer)
                if parsed is not None:
                    name, steps = parsed.meta.name, len(parsed.steps)
            rows.append(
                {
                    "id": cid,
                    "name": name,
                    "steps": steps,
                    "active": active,
                    "pending": pending,
                    "review": review_label(active, now) if active else ("Nothing active", "warn"),
                }
            )
    return rows


def list_page(
    request: Request,
    db: Database,
    renderer: Renderer,
    *,
    typed: dict[str, Any] | None = None,
    builder: Builder | None = None,
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The campaigns and the "New campaign" form (422: what was typed, each error beside its
    field)."""
    shown = builder or Builder()
    return page(
        request,
        "campaigns.html",
        {
            "title": "Campaigns",
            "rows": campaign_rows(db, renderer),
            "typed": typed or {},
            "builder": shown,
            "rule_options": rule_builder.options("", (), shown.conditions),
            "field_errors": field_errors or {},
        },
        status=status,
    )


@router.get(BASE, include_in_schema=False)
def campaign_list(request: Request, session: Staff, db: Db, renderer: Render) -> Response:
    return list_page(request, db, renderer)


@router.post(BASE, include_in_schema=False)
def new_campaign(
    request: Request,
    session: Staff,
    db: Db,
    renderer: Render,
    title: str = Form("", max_length=150),
    campaign_id: str = Form("", max_length=100),
    step_title: str = Form("", max_length=150),
    rule_join: str = Form("all", max_length=10),
    cond: Annotated[list[str] | None, Form()] = None,
    cond_sense: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """A new campaign from the console: its title, id (offered from the title), who it is for
    and its first step's title. It is stored as version 1, a draft holding that one step
    (audited ``content.create``), and the author lands in that step's editor."""
    typed = {"title": title, "campaign_id": campaign_id, "step_title": step_title}
    builder = rule_builder.form_builder(
        rule_join, cond or [], cond_sense or [], advanced=False, delay_days="0", checkin=False
    )
    cid = campaign_id.strip().lower() or authoring.campaign_id_of(title)
    audience = rule_builder.to_rule(builder.join, builder.conditions)
    errors: dict[str, str] = {}
    if not " ".join(title.split()):
        errors["title"] = "Give the campaign a title."
    try:
        authoring.check_campaign_id(cid)
    except AuthoringError as exc:
        errors["campaign_id"] = str(exc)[:1].upper() + str(exc)[1:] + "."
    try:
        authoring.slug_of(step_title)
    except AuthoringError:
        errors["step_title"] = "Give the first email a title with some letters or digits."
    if why := rule_builder.check_rule(audience):
        errors["rule"] = why[:1].upper() + why[1:] + "."
    made = None
    if not errors:
        try:
            with refusals():
                files, name = authoring.new_campaign(cid, title, audience, step_title)
            with refusals(), db.begin() as conn:
                made = versions.create_campaign(
                    conn, cid, files, _actor(session), utcnow(), audit=auditor(session)
                )
        except Refused as exc:
            errors["campaign_id"] = str(exc)
    if made is None:
        typed["campaign_id"] = cid if campaign_id.strip() or title.strip() else ""
        return list_page(
            request,
            db,
            renderer,
            typed=typed,
            builder=builder,
            field_errors=errors,
            status=422,
        )
    target = f"{BASE}/{cid}/versions/{made.id}/files/{name}"
    return flash(
        RedirectResponse(target, status_code=303),
        f"Campaign “{' '.join(title.split())}” created as a draft with its first email. "
        "Write it here; nothing is sent until a clinician approves it and it is made live.",
    )


@router.get(BASE + "/{campaign_id}", include_in_schema=False)
def campaign_page(
    request: Request, campaign_id: str, session: Staff, db: Db, renderer: Render, note: str = ""
) -> Response:
    return campaign_view(request, db, renderer, session, campaign_id, note=note)


@router.get(BASE + "/{campaign_id}/journey", include_in_schema=False)
def journey_page(
    request: Request,
    campaign_id: str,
    session: Staff,
    db: Db,
    renderer: Render,
    symptoms: Annotated[list[str] | None, Query()] = None,
    first_name: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The week-by-week timeline for a persona, from the same code as
    ``clinicmail campaigns journey``, for the working version."""
    with db.begin() as conn:
        history = versions.versions_of(conn, campaign_id) if len(campaign_id) <= 64 else []
    if not history:
        return error_page(request, "No such campaign", "There is no campaign with this id.", 404)
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


@router.get(BASE + "/{campaign_id}/versions/{version_id}/files/{name}", include_in_schema=False)
def editor(
    request: Request,
    campaign_id: str,
    version_id: str,
    name: str,
    session: Staff,
    ports: Ports,
    renderer: Render,
    saved: str = "",
    sent: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    v = load(ports.db, campaign_id, version_id)
    if name not in v.files or name == "campaign.yaml":
        return error_page(request, "No such step", "This version has no such step file.", 404)
    try:
        parts = authoring.split(v.files[name])
    except AuthoringError as exc:
        parts = Parts("", "", v.files[name], f"# {exc}")
    done = []
    if saved:
        done.append(f"Saved at {local_time(v.updated_at, ports.clinic_zone(), day=False)}.")
    if sent:
        done.append(f"Test email: {sent}.")
    return editor_page(
        request, ports, renderer, campaign_id, v, name, parts, v.files, done=" ".join(done) or None
    )


@router.post(BASE + "/{campaign_id}/versions/{version_id}/preview", include_in_schema=False)
def live_preview(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    ports: Ports,
    renderer: Render,
    form: StepFields,
    name: str = Form(...),
    subject: str = Form("", max_length=500),
    preheader: str = Form("", max_length=500),
    body: str = Form("", max_length=100_000),
    settings: str = Form("", max_length=20_000),
    persona_symptoms: Annotated[list[str] | None, Form()] = None,
    persona_first_name: str = Form("", max_length=100),
    width: str = Form("desktop"),
) -> Response:
    """The preview pane for unsaved text (htmx swaps it in as the author types), the settings
    form's changes included."""
    v = load(ports.db, campaign_id, version_id)
    if name not in v.files:
        raise NotFound("No such step", "This version has no such step file.")
    parts, _ = with_form(Parts(subject, preheader, body, settings), form)
    files = edited_files(v, name, *_fields(parts))
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


def save_step(
    request: Request,
    ports: ConsolePorts,
    renderer: Renderer,
    session: Session,
    v: Version,
    name: str,
    parts: Parts,
    revision: int | None,
) -> Version | Response:
    """Save one step's text to the draft (audited with before/after in its transaction): the
    saved version, or the page that says why not (422 with the text as typed, 409 stale)."""
    files = edited_files(v, name, parts.subject, parts.preheader, parts.body, parts.settings)
    # A subject or preheader that cannot be an email header is refused now, field named,
    # never first at send time (core.headers).
    problems = [
        f"the {field} {problem}"
        for field, text, limit in (
            ("subject", parts.subject, SUBJECT_MAX),
            ("preheader", parts.preheader, PREHEADER_MAX),
        )
        if (problem := header_problem(text, max_length=limit))
    ]
    error = f"Not saved: {problems[0]}." if problems else None
    if error is None:
        try:
            with refusals(), ports.db.begin() as conn:
                return versions.save_draft(
                    conn,
                    v,
                    files,
                    _actor(session),
                    utcnow(),
                    audit=auditor(session),
                    renderer=renderer,
                    expected_revision=revision,
                    detail={"file": name, "before": v.files[name], "after": files[name]},
                )
        except StaleRevision as exc:
            return stale(request, exc, name, files[name])
        except Refused as exc:
            error = f"Not saved: {exc}"
    # The files as typed, so the preview shows the findings of what was refused.
    return editor_page(
        request, ports, renderer, v.campaign_id, v, name, parts, files, error=error, status=422
    )


@router.post(BASE + "/{campaign_id}/versions/{version_id}/files/{name}", include_in_schema=False)
def save(
    request: Request,
    campaign_id: str,
    version_id: str,
    name: str,
    session: Staff,
    ports: Ports,
    renderer: Render,
    form: StepFields,
    subject: str = Form("", max_length=500),
    preheader: str = Form("", max_length=500),
    body: str = Form("", max_length=100_000),
    settings: str = Form("", max_length=20_000),
    revision: int | None = Form(None),
) -> Response:
    v = load(ports.db, campaign_id, version_id)
    if name not in v.files or name == "campaign.yaml":
        raise NotFound("No such step", "This version has no such step file.")
    parts, field_errors = with_form(Parts(subject, preheader, body, settings), form)
    if field_errors:
        if request.headers.get("x-autosave") == "1":
            detail = "Not saved: " + " ".join(field_errors.values())
            return JSONResponse({"detail": detail}, status_code=422)
        return editor_page(
            request,
            ports,
            renderer,
            campaign_id,
            v,
            name,
            parts,
            edited_files(v, name, *_fields(parts)),
            error="Not saved: fix what is marked below.",
            status=422,
            typed=form,
            field_errors=field_errors,
        )
    saved = save_step(request, ports, renderer, session, v, name, parts, revision)
    if request.headers.get("x-autosave") == "1":
        return autosaved(saved, name)
    if isinstance(saved, Response):
        return saved
    target = f"{BASE}/{campaign_id}/versions/{saved.id}/files/{name}?saved=1"
    return RedirectResponse(target, status_code=303)


def autosaved(saved: Version | Response, name: str) -> Response:
    """The editor's autosave answer (console.js): the new revision and when, for its
    "Saved HH:MM" line; or why not, the text staying on the author's page."""
    if isinstance(saved, Response):
        why = (
            "Someone else saved this step since you opened it. Use Save to see both versions."
            if saved.status_code == 409
            else "Not saved: use Save to see what needs fixing."
        )
        return JSONResponse({"detail": why}, status_code=saved.status_code)
    try:
        settings = authoring.split(saved.files[name]).settings
    except AuthoringError:
        settings = None
    return JSONResponse(
        {
            "revision": saved.revision,
            "saved_at": saved.updated_at.isoformat(),
            "settings": settings,
        },
        headers={"Cache-Control": "no-store"},
    )


# -- structure -------------------------------------------------------------------------------
@router.post(BASE + "/{campaign_id}/drafts", include_in_schema=False)
def start_draft(
    request: Request, campaign_id: str, session: Staff, db: Db, renderer: Render
) -> Response:
    try:
        with refusals(), db.begin() as conn:
            versions.start_draft(
                conn, campaign_id, _actor(session), utcnow(), audit=auditor(session)
            )
    except Refused as exc:
        return campaign_view(
            request,
            db,
            renderer,
            session,
            campaign_id,
            error=f"No draft started: {exc}",
            status=422,
        )
    return back(campaign_id, "draft")


@router.post(BASE + "/{campaign_id}/versions/{version_id}/steps", include_in_schema=False)
def add_step(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    db: Db,
    renderer: Render,
    title: str = Form(..., max_length=150),
) -> Response:
    v = load(db, campaign_id, version_id)
    try:
        with refusals():
            files, name = authoring.add_step(v.files, title)
        saved = change_files(db, renderer, session, v, files, "content.add_step", {"file": name})
    except Refused as exc:
        return campaign_view(
            request,
            db,
            renderer,
            session,
            campaign_id,
            error=f"No step added: {exc}",
            typed={"title": title},
            status=422,
        )
    return RedirectResponse(
        f"{BASE}/{campaign_id}/versions/{saved.id}/files/{name}", status_code=303
    )


@router.post(
    BASE + "/{campaign_id}/versions/{version_id}/files/{name}/move", include_in_schema=False
)
def move_step(
    request: Request,
    campaign_id: str,
    version_id: str,
    name: str,
    session: Staff,
    db: Db,
    renderer: Render,
    direction: str = Form(...),
) -> Response:
    v = load(db, campaign_id, version_id)
    try:
        with refusals():
            files = authoring.move_step(v.files, name, -1 if direction == "up" else 1)
        change_files(
            db,
            renderer,
            session,
            v,
            files,
            "content.move_step",
            {"file": name, "direction": direction},
        )
    except Refused as exc:
        return campaign_view(
            request, db, renderer, session, campaign_id, error=f"Not moved: {exc}", status=422
        )
    return back(campaign_id, "step-moved")


@router.post(
    BASE + "/{campaign_id}/versions/{version_id}/files/{name}/retire", include_in_schema=False
)
def retire_step(
    request: Request,
    campaign_id: str,
    version_id: str,
    name: str,
    session: Staff,
    db: Db,
    renderer: Render,
    confirm: str = Form("", max_length=10),
) -> Response:
    """Take a step out of the draft, after a page saying whom it affects once the draft is
    made live."""
    v = load(db, campaign_id, version_id)
    if confirm != "yes" and name in v.files:
        with db.begin() as conn:
            enrolled = enrollment.active_count(conn, campaign_id)
        try:
            subject = authoring.split(v.files[name]).subject or "this step"
        except authoring.AuthoringError:
            subject = "this step"
        return page(
            request,
            "confirm.html",
            {
                "title": f"Retire the step “{subject}”?",
                "message": (
                    f"It is taken out of draft version {v.number}. Once this draft is made "
                    f"live, none of the {people(enrolled)} going through this campaign who "
                    "have not had it yet will get it. The live version is not changed now."
                ),
                "action": f"{BASE}/{campaign_id}/versions/{v.id}/files/{name}/retire",
                "button": "Retire this step",
                "cancel": f"{BASE}/{campaign_id}",
            },
        )
    try:
        with refusals():
            files = authoring.retire_step(v.files, name)
        change_files(
            db,
            renderer,
            session,
            v,
            files,
            "content.retire_step",
            {"file": name, "before": v.files[name]},
        )
    except Refused as exc:
        return campaign_view(
            request, db, renderer, session, campaign_id, error=f"Not retired: {exc}", status=422
        )
    return back(campaign_id, "step-retired")


@router.post(BASE + "/{campaign_id}/versions/{version_id}/variants", include_in_schema=False)
def add_variant(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    db: Db,
    renderer: Render,
    step: str = Form(...),
    variant: str = Form(..., max_length=40),
    symptoms: Annotated[list[str] | None, Form()] = None,
) -> Response:
    v = load(db, campaign_id, version_id)
    codes = sorted(set(symptoms or []))
    typed = {"step": step, "variant": variant, "symptoms": codes}
    try:
        if not codes or unknown_codes(frozenset(codes)):
            raise Refused("Choose at least one symptom that selects this variant.")
        with refusals():
            files, name = authoring.add_variant(v.files, step, variant, {"has_any": codes})
        saved = change_files(
            db,
            renderer,
            session,
            v,
            files,
            "content.add_variant",
            {"file": name, "symptoms": codes},
        )
    except Refused as exc:
        return campaign_view(
            request,
            db,
            renderer,
            session,
            campaign_id,
            error=f"No variant added: {exc}",
            typed=typed,
            status=422,
        )
    return RedirectResponse(
        f"{BASE}/{campaign_id}/versions/{saved.id}/files/{name}", status_code=303
    )


# -- workflow --------------------------------------------------------------------------------
def refused_page(
    request: Request, db: Database, renderer: Renderer, session: Session, v: Version, exc: Refused
) -> Response:
    return campaign_view(
        request, db, renderer, session, v.campaign_id, error=f"Not done: {exc}", status=422
    )


@router.post(BASE + "/{campaign_id}/versions/{version_id}/submit", include_in_schema=False)
def submit(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    db: Db,
    renderer: Render,
) -> Response:
    v = load(db, campaign_id, version_id)
    now = utcnow()
    try:
        with refusals(), db.begin() as conn:
            versions.submit(conn, v, renderer, now, audit=auditor(session, now))
    except Refused as exc:
        return refused_page(request, db, renderer, session, v, exc)
    return back(campaign_id, "submitted")


def decide(
    request: Request,
    db: Database,
    renderer: Renderer,
    session: Session,
    v: Version,
    note: str,
    review_interval: Any,
    *,
    approving: bool,
) -> Response:
    """A clinician's decision with its note. Who may take it is the workflow's rule
    (campaigns.review): anyone else gets 403 before anything runs."""
    who = _actor(session)
    try:
        may_approve(who, v, versions.KIND) if approving else may_review(who, versions.KIND)
    except ReviewError as exc:
        raise Forbidden(str(exc).capitalize() + ".") from None
    now = utcnow()
    try:
        with refusals(), db.begin() as conn:
            if approving:
                versions.approve(
                    conn, v, who, note, now, review_interval, audit=auditor(session, now)
                )
            else:
                versions.request_changes(conn, v, who, note, now, audit=auditor(session, now))
    except Refused as exc:
        return refused_page(request, db, renderer, session, v, exc)
    return back(v.campaign_id, "approved" if approving else "changes")


@router.post(BASE + "/{campaign_id}/versions/{version_id}/approve", include_in_schema=False)
def approve(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    ports: Ports,
    renderer: Render,
    note: str = Form("", max_length=2000),
) -> Response:
    v = load(ports.db, campaign_id, version_id)
    return decide(
        request, ports.db, renderer, session, v, note, ports.review_interval, approving=True
    )


@router.post(BASE + "/{campaign_id}/versions/{version_id}/request-changes", include_in_schema=False)
def request_changes(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    ports: Ports,
    renderer: Render,
    note: str = Form("", max_length=2000),
) -> Response:
    v = load(ports.db, campaign_id, version_id)
    return decide(
        request, ports.db, renderer, session, v, note, ports.review_interval, approving=False
    )


def people(n: int) -> str:
    return f"{n:,} {'person' if n == 1 else 'people'}"


def confirmed(
    request: Request,
    ports: ConsolePorts,
    renderer: Renderer,
    session: Session,
    v: Version,
    *,
    confirm: str,
    ask: Callable[[], dict[str, Any]] | None,
    act: Callable[[Any, datetime], object],  # (the transaction's connection, now)
    note: str,
    needed: str = "yes",
    not_done: str = "Not done",
) -> Response:
    """The tail every version change shares: unless ``confirm`` is ``needed``, the page
    ``ask`` describes (what it will do, for how many people); then the change in one
    transaction (its audit entry in it), this process told the content changed, and the
    campaign page with the result message ``note``. A refusal is the 422 page, in words.
    ``ask`` None: a change that needs no confirmation (it only makes a draft)."""
    if ask is not None and confirm != needed:
        return page(
            request,
            "confirm.html",
            {
                "confirm_value": needed,
                "cancel": f"{BASE}/{v.campaign_id}",
                "details": [],
                **ask(),
            },
        )
    now = utcnow()
    try:
        with refusals(), ports.db.begin() as conn:
            act(conn, now)
    except Refused as exc:
        return campaign_view(
            request,
            ports.db,
            renderer,
            session,
            v.campaign_id,
            error=f"{not_done}: {exc}",
            status=422,
        )
    if ask is not None:  # activate and retire change what is sent; a restore only drafts
        ports.content_changed()
    return back(v.campaign_id, note)


@router.post(BASE + "/{campaign_id}/versions/{version_id}/activate", include_in_schema=False)
def activate(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    ports: Ports,
    renderer: Render,
    confirm: str = Form("", max_length=10),
) -> Response:
    """Make an approved version live, after a page saying how many people get it from now on.
    When it would drop clinician-approved changes that went live after its base (a version it
    does not descend from), that page names them and only ``confirm=drop`` activates: a page
    read before those changes existed (``confirm=yes``) is asked again, never obeyed."""
    v = load(ports.db, campaign_id, version_id)
    with ports.db.begin() as conn:
        dropped = versions.dropped_by(conn, v)
        enrolled = enrollment.active_count(conn, campaign_id)

    def ask() -> dict[str, Any]:
        message = (
            f"From now on, the {people(enrolled)} going through this campaign get "
            f"version {v.number}'s emails for their next steps, and everyone who joins does too."
        )
        if dropped:
            message = (
                f"Version {v.number} was started before changes a clinician approved, so "
                "making it live removes them. " + message
            )
        return {
            "title": f"Activate version {v.number}?",
            "message": message,
            "details": [
                f"Version {x.number}, approved by {x.reviewed_by or 'a clinician'}"
                f"{f' on {x.reviewed_at:%d %b %Y}' if x.reviewed_at else ''}: its changes are "
                f"not in version {v.number} and would be dropped."
                for x in dropped
            ],
            "action": f"{BASE}/{campaign_id}/versions/{v.id}/activate",
            "button": (
                f"Activate and drop version {', '.join(str(x.number) for x in dropped)}"
                if dropped
                else f"Activate for {people(enrolled)}"
            ),
        }

    return confirmed(
        request,
        ports,
        renderer,
        session,
        v,
        confirm=confirm,
        needed="drop" if dropped else "yes",
        ask=ask,
        act=lambda conn, now: versions.activate(conn, v, now, audit=auditor(session, now)),
        note="activated",
    )


@router.post(BASE + "/{campaign_id}/versions/{version_id}/restore", include_in_schema=False)
def restore(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    ports: Ports,
    renderer: Render,
) -> Response:
    """A retired version back as a new draft (audited), to be reviewed like any draft."""
    v = load(ports.db, campaign_id, version_id)
    return confirmed(
        request,
        ports,
        renderer,
        session,
        v,
        confirm="",
        ask=None,
        act=lambda conn, now: versions.restore(
            conn, v, _actor(session), now, audit=auditor(session, now)
        ),
        note="restored",
        not_done="Not restored",
    )


@router.post(BASE + "/{campaign_id}/versions/{version_id}/retire", include_in_schema=False)
def retire(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    ports: Ports,
    renderer: Render,
    confirm: str = Form("", max_length=10),
) -> Response:
    """Retire a version. The live one stops this campaign's email for everyone going through
    it, so only a clinician or ops may, and only after a page that says for how many people;
    a draft or approved version is discarded after the same kind of page."""
    v = load(ports.db, campaign_id, version_id)
    live = v.state == versions.ACTIVE
    if live:
        require_role(session, CLINICIAN)

    def ask() -> dict[str, Any]:
        with ports.db.begin() as conn:
            count = enrollment.active_count(conn, campaign_id) if live else 0
        return {
            "title": f"Retire version {v.number}?",
            "message": (
                f"This stops campaign email for {people(count)}: nobody gets another email of "
                "this campaign until a new version is made live."
                if live
                else f"This discards version {v.number} ({v.state.replace('_', ' ')}); "
                "nobody has been sent it. The live version is not changed."
            ),
            "action": f"{BASE}/{campaign_id}/versions/{v.id}/retire",
            "button": "Stop this campaign's email" if live else "Discard this version",
        }

    return confirmed(
        request,
        ports,
        renderer,
        session,
        v,
        confirm=confirm,
        ask=ask,
        act=lambda conn, now: versions.retire(conn, v, now, audit=auditor(session, now)),
        note="retired",
    )


@router.post(BASE + "/{campaign_id}/versions/{version_id}/test-send", include_in_schema=False)
def send_a_test(
    request: Request,
    campaign_id: str,
    version_id: str,
    session: Staff,
    ports: Ports,
    renderer: Render,
    form: StepFields,
    name: str = Form(...),
    subject: str | None = Form(None, max_length=500),
    preheader: str = Form("", max_length=500),
    body: str = Form("", max_length=100_000),
    settings: str = Form("", max_length=20_000),
    revision: int | None = Form(None),
    persona_symptoms: Annotated[list[str] | None, Form()] = None,
    persona_first_name: str = Form("", max_length=100),
) -> Response:
    """Send the step, as the persona would get it, to the signed-in staff member only: marked
    as a test, outside the ledger, so never in stats. From the editor of a draft, the text on
    screen is saved first (so the test is what was typed); of any other version, the saved
    text is sent."""
    v = load(ports.db, campaign_id, version_id)
    if name not in v.files or name == "campaign.yaml":
        raise NotFound("No such step", "This version has no such step file.")
    if subject is not None and v.editable:
        parts, field_errors = with_form(Parts(subject, preheader, body, settings), form)
        if field_errors:
            return error_page(
                request, "No test sent", "Not saved: " + " ".join(field_errors.values()), 422
            )
        if authoring.compose(parts) != v.files[name]:
            saved = save_step(request, ports, renderer, session, v, name, parts, revision)
            if isinstance(saved, Response):
                return saved
            v = saved
    persona = _persona(persona_symptoms or [], persona_first_name)
    parsed, _ = versions.parse(campaign_id, v.files, renderer)
    stem = name.split(".", 1)[0]
    step = (
        next((s for s in parsed.steps if s.default.file.endswith("/" + stem + ".md")), None)
        if parsed is not None
        else None
    )
    if parsed is None or step is None:
        return error_page(
            request, "No test sent", "Fix the problems shown before sending a test.", 422
        )
    variant = step.variant_for(Facts(symptoms=persona.symptoms))
    rendered = render_variant(renderer, parsed, variant)
    outcome = ports.send_test_copy(session.user.email, rendered, persona.first_name or "there")
    with ports.db.begin() as conn:
        audit.record(
            conn,
            session.user,
            "content.test_send",
            "campaign_version",
            v.id,
            utcnow(),
            {
                "campaign": v.campaign_id,
                "number": v.number,
                "file": name,
                "variant": variant.id,
                "outcome": outcome,
            },
        )
    return RedirectResponse(
        f"{BASE}/{campaign_id}/versions/{v.id}/files/{name}?sent={quote(outcome)}",
        status_code=303,
    )
