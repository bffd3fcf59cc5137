"""Newsletters: compose a one-off broadcast with a live preview, choose its audience with a
segment builder that counts as you choose, see the per-zone plan ``campaigns broadcast
--dry-run`` gives (the same code), send it through clinical review, schedule it, watch its
progress and cancel it.

Marketing (and above) write and schedule; only a clinician who did not edit it approves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from campaigns import broadcasts as bc
from campaigns import newsletters as nl
from campaigns.previews import preview_values
from campaigns.rendering import render_variant
from campaigns.review import ReviewError, StaleRevision, is_reviewer, may_approve, may_review
from console.auth import Staff
from console.deps import Db, Ports, services
from console.errors import Forbidden, NotFound
from console.ports import ConsolePorts
from console.preview import Finding, Persona, Preview, gate_findings
from console.render import error_page, flash, page
from console.reviewing import actor, auditor
from staff import audit
from staff.sessions import Session
from storage import Database, utcnow
from subscribers.segments import parse_rule
from subscribers.symptoms import GROUPS, SYMPTOMS, unknown_codes
from templates import TemplateProblem, fill

BASE = "/admin/newsletters"
TARGET = "newsletter"
CHOOSABLE = [s for s in SYMPTOMS if s.group != "red_flags"]
# A subject or preheader is read whole up to this, so one past its limit (core.headers) is
# refused with the field named rather than cut short without a word.
MAX_SUBJECT = MAX_PREHEADER = 1_000
MAX_BODY = 50_000


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name, "")
    return (value if isinstance(value, str) else "")[:limit]


def _audience(form: FormData) -> nl.Audience:
    codes = [str(c) for c in form.getlist("seg_codes")]
    groups = [str(g) for g in form.getlist("seg_groups")]
    return nl.Audience(
        codes=tuple(c for c in codes if c and not unknown_codes([c])),
        groups=tuple(g for g in groups if g in {x.id for x in GROUPS} and g != "red_flags"),
        opened=_text(form, "seg_opened", 120).strip(),
        clicked=_text(form, "seg_clicked", 120).strip(),
        checkin=c if (c := _text(form, "seg_checkin", 10)) in nl.CHECKINS else "",
    )


def _local_at(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), bc.LOCAL_FORMAT)
    except ValueError:
        return None


class Draft:
    """The editor's fields, from a form or a stored newsletter."""

    def __init__(
        self,
        slug: str,
        subject: str,
        preheader: str,
        body: str,
        audience: nl.Audience,
        local_at: str,
        time_sensitive: bool = False,
    ) -> None:
        self.slug, self.subject, self.preheader, self.body = slug, subject, preheader, body
        self.audience, self.local_at = audience, local_at
        self.time_sensitive = time_sensitive

    @classmethod
    def of(cls, n: nl.Newsletter) -> Draft:
        return cls(
            n.slug, n.subject, n.preheader, n.body, n.audience, n.local_at or "", n.time_sensitive
        )

    @classmethod
    def parse(cls, form: FormData, slug: str | None = None) -> Draft:
        return cls(
            slug if slug is not None else _text(form, "slug", 60).strip(),
            _text(form, "subject", MAX_SUBJECT).strip(),
            _text(form, "preheader", MAX_PREHEADER).strip(),
            _text(form, "body", MAX_BODY),
            _audience(form),
            _text(form, "local_at", 16).strip(),
            form.get("time_sensitive") == "on",
        )

    def fields(self) -> nl.Fields:
        return nl.Fields(
            subject=self.subject,
            preheader=self.preheader,
            body=self.body,
            audience=self.audience,
            local_at=self.local_at or None,
            time_sensitive=self.time_sensitive,
        )

    @property
    def file_name(self) -> str:
        return f"{self.slug or 'newsletter'}.md"

    @property
    def sources(self) -> dict[str, str]:
        return {self.file_name: nl.markdown(self.subject, self.preheader, self.body)}


def _progress(db: Database, n: nl.Newsletter) -> dict[str, Any]:
    """The broadcast's progress once the newsletter is scheduled, and the state to show."""
    with db.begin() as conn:
        stored = bc.find(conn, bc.campaign_id_for(n.slug))
        progress = bc.progress(conn, stored.campaign_id) if stored else None
    return {
        "progress": progress,
        "state": bc.state(stored, progress) if stored and progress else n.state,
    }


def _persona(form: FormData | None) -> Persona:
    if form is None:
        return Persona()
    codes = frozenset(str(c) for c in form.getlist("persona_symptoms"))
    return Persona(
        codes - frozenset(unknown_codes(codes)),
        _text(form, "persona_first_name", 100).strip() or None,
    )


def check(
    ports: ConsolePorts, draft: Draft, persona: Persona, *, audience: bool = True
) -> dict[str, Any]:
    """Everything the live panel shows: the email, its problems, the audience and plan
    (``audience=False`` once scheduled: the broadcast's progress replaces the plan)."""
    preview = Preview()
    rule_data = nl.rule_data(draft.audience)
    try:
        rule = parse_rule(rule_data)
    except ValidationError as exc:
        preview.findings.append(Finding("audience", str(exc.errors()[0]["msg"])))
        return {"preview": preview, "count": None, "plan": None, "refused": None}
    if not draft.subject:
        preview.findings.append(Finding("subject", "Write a subject."))
    if not draft.body.strip():
        preview.findings.append(Finding("body", "Write the newsletter."))
    if ports.renderer is not None and draft.subject and draft.body.strip():
        campaign, problems = bc.build(
            bc.campaign_id_for(draft.slug or "preview"),
            draft.file_name,
            draft.sources,
            rule,
            ports.renderer,
        )
        preview.findings += [
            Finding(f"line {p.line}" if p.line else "newsletter", p.message) for p in problems
        ]
        if campaign is not None:
            preview.findings += gate_findings(draft.subject, draft.preheader, draft.body, week=1)
            try:
                rendered = render_variant(ports.renderer, campaign, campaign.steps[0].default)
                preview.subject, preview.html, preview.text = fill(
                    rendered, preview_values(ports.base_url, persona.first_name)
                )
            except TemplateProblem as exc:
                preview.findings.append(Finding("newsletter", exc.message))
    if not audience:
        return {"preview": preview, "count": None, "plan": None, "refused": None}
    now = utcnow()
    excluded = bc.Excluded()
    with ports.db.begin() as conn:
        count = sum(len(chunk) for chunk in bc.audience(conn, rule, now, lambda _tz: now, excluded))
    plan: dict[str, Any] | None = None
    refused: str | None = None
    local_at = _local_at(draft.local_at)
    if local_at is None:
        refused = "Choose the local date and time it should arrive."
    elif not preview.errors:
        try:
            plan = services(ports).broadcast(
                draft.slug or "preview",
                draft.file_name,
                draft.sources,
                rule_data,
                local_at,
                True,
                draft.time_sensitive,
            )
        except ValueError as exc:
            refused = str(exc).replace("--at ", "").replace("--segment", "audience")
    return {
        "preview": preview,
        "count": count,
        "excluded": excluded,
        "plan": plan,
        "refused": refused,
    }


def editor(
    request: Request,
    ports: ConsolePorts,
    draft: Draft,
    *,
    newsletter: nl.Newsletter | None = None,
    error: str | None = None,
    status: int = 200,
    form: FormData | None = None,
) -> Response:
    persona = _persona(form)
    return page(
        request,
        "newsletters/edit.html",
        {
            "title": "Newsletter",
            "draft": draft,
            "n": newsletter,
            "error": error,
            "groups": GROUPS,
            "symptoms": CHOOSABLE,
            "campaigns": services(ports).campaign_names(),
            "checkins": nl.CHECKINS,
            "persona": persona,
            "width": "desktop",
            "may_approve": is_reviewer(getattr(request.state.staff_session.user, "role", "")),
            **check(ports, draft, persona),
        },
        status=status,
    )


def find(db: Database, newsletter_id: str) -> nl.Newsletter:
    with db.begin() as conn:
        found = nl.get(conn, newsletter_id)
    if found is None:
        raise NotFound("No such newsletter", "There is no newsletter with this id.")
    return found


def refuse(request: Request, message: str, status: int = 409) -> Response:
    return error_page(request, "Not done", message, status)


DONE = {
    "created": "Draft created.",
    "saved": "Saved.",
    "submitted": "Submitted: a clinician will review it.",
    "approved": "Approved: it can be scheduled.",
    "changes": "Sent back with your note: changes requested.",
}


def shown(n: nl.Newsletter, done: str = "") -> Response:
    """Back to the newsletter's page, saying there what was just done."""
    response = RedirectResponse(f"{BASE}/{n.id}", 303)
    return flash(response, DONE[done]) if done else response


router = APIRouter()


@router.get(BASE, include_in_schema=False)
def listing(request: Request, session: Staff, db: Db) -> Response:
    with db.begin() as conn:
        letters = nl.all_newsletters(conn)
        linked = {bc.campaign_id_for(n.slug) for n in letters}
        other = []
        for stored in bc.all_stored(conn):
            if stored.campaign_id in linked:
                continue
            p = bc.progress(conn, stored.campaign_id)
            other.append({"stored": stored, "progress": p, "state": bc.state(stored, p)})
    rows = [{"n": n, **_progress(db, n)} for n in letters]
    return page(
        request, "newsletters/list.html", {"title": "Newsletters", "rows": rows, "other": other}
    )


@router.get(f"{BASE}/new", include_in_schema=False)
def new(request: Request, session: Staff, ports: Ports) -> Response:
    return editor(request, ports, Draft("", "", "", "", nl.Audience(), ""))


@router.post(f"{BASE}/preview", include_in_schema=False)
async def live(request: Request, session: Staff, ports: Ports) -> Response:
    form = await request.form()
    draft = Draft.parse(form)
    persona = _persona(form)
    return page(
        request,
        "newsletters/_live.html",
        {
            "width": _text(form, "width", 10) or "desktop",
            "persona": persona,
            **check(ports, draft, persona),
        },
    )


@router.post(BASE, include_in_schema=False)
async def create(request: Request, session: Staff, ports: Ports) -> Response:
    form = await request.form()
    draft = Draft.parse(form)
    now = utcnow()

    def again(error: str) -> Response:
        return editor(request, ports, draft, error=error, status=422, form=form)

    if not bc.SLUG.match(draft.slug):
        return again(
            "The id must be lowercase letters, digits and "
            "dashes (at most 54), for example december-news."
        )
    if not draft.subject or not draft.body.strip():
        return again("Write a subject and the newsletter first.")
    with ports.db.begin() as conn:
        taken = nl.slug_taken(conn, draft.slug) or bc.find(conn, bc.campaign_id_for(draft.slug))
    if taken:
        return again(f"The id {draft.slug!r} is taken; ids are never reused. Choose another.")
    assert ports.renderer is not None  # the app always hands the console one
    try:
        with ports.db.begin() as conn:
            n = nl.create(
                conn,
                slug=draft.slug,
                fields=draft.fields(),
                editor_id=session.user.id,
                editor=session.user.email,
                now=now,
                renderer=ports.renderer,
            )
            audit.record(
                conn, session.user, "newsletter.create", TARGET, n.id, now, {"after": _snapshot(n)}
            )
    except nl.NewsletterError as exc:
        return again(str(exc))
    return shown(n, "created")


@router.get(BASE + "/{newsletter_id}", include_in_schema=False)
def show(request: Request, newsletter_id: str, session: Staff, ports: Ports) -> Response:
    n = find(ports.db, newsletter_id)
    if n.editable:
        return editor(request, ports, Draft.of(n), newsletter=n)
    return page(
        request,
        "newsletters/show.html",
        {
            "title": "Newsletter",
            "n": n,
            **_progress(ports.db, n),
            "may_approve": is_reviewer(session.user.role),
            "edited_it": session.user.id in n.editor_ids,
            "persona": Persona(),
            "width": "desktop",
            **check(ports, Draft.of(n), Persona(), audience=n.state in (nl.IN_REVIEW, nl.APPROVED)),
        },
    )


@router.get(BASE + "/{newsletter_id}/progress", include_in_schema=False)
def progress_part(request: Request, newsletter_id: str, session: Staff, db: Db) -> Response:
    n = find(db, newsletter_id)
    return page(request, "newsletters/_progress.html", {"n": n, **_progress(db, n)})


@router.post(BASE + "/{newsletter_id}", include_in_schema=False)
async def save(request: Request, newsletter_id: str, session: Staff, ports: Ports) -> Response:
    form = await request.form()
    n = find(ports.db, newsletter_id)
    draft = Draft.parse(form, slug=n.slug)
    now = utcnow()
    autosave = request.headers.get("x-autosave") == "1"  # console.js: answer in JSON
    assert ports.renderer is not None  # the app always hands the console one
    try:
        with ports.db.begin() as conn:
            nl.save(
                conn,
                n,
                fields=draft.fields(),
                actor=actor(session),
                now=now,
                audit=auditor(session, now),
                renderer=ports.renderer,
                expected_revision=_revision(form),
                detail={"before": _snapshot(n), "after": draft.fields().values()},
            )
            saved = nl.require(conn, n.id)
    except StaleRevision as exc:
        if autosave:
            return JSONResponse({"detail": str(exc).capitalize()}, status_code=409)
        theirs = find(ports.db, newsletter_id)  # as saved by the other person
        return editor(
            request, ports, Draft.of(theirs), newsletter=theirs, error=str(exc), status=409
        )
    except nl.NewsletterError as exc:
        # The page again with the text as typed: 422 when the text is refused (a header that
        # cannot be, a template with problems), 409 when the newsletter is no longer a draft.
        status = 422 if n.editable or isinstance(exc, nl.TemplateRefused) else 409
        if autosave:
            return JSONResponse({"detail": f"Not saved: {exc}."}, status_code=status)
        return editor(request, ports, draft, newsletter=n, error=str(exc), status=status, form=form)
    if autosave:
        return JSONResponse(
            {"revision": saved.revision, "saved_at": saved.updated_at.isoformat()},
            headers={"Cache-Control": "no-store"},
        )
    return shown(n, "saved")


@router.post(BASE + "/{newsletter_id}/submit", include_in_schema=False)
def submit(request: Request, newsletter_id: str, session: Staff, ports: Ports) -> Response:
    n = find(ports.db, newsletter_id)
    found = check(ports, Draft.of(n), Persona())["preview"]
    if found.errors:
        return refuse(
            request, f"Fix the {len(found.errors)} problem(s) shown before asking for review.", 422
        )
    now = utcnow()
    # The delivery time is checked now, not first when scheduling after the review: a time
    # that has passed, is too soon to review, or falls outside the send window is refused on
    # the editor, where it can be changed.
    late = nl.timing_problem(n.local_at, ports.clinic_zone(), now) or when_refused(ports, n)
    if late:
        return editor(
            request, ports, Draft.of(n), newsletter=n, error=f"Not submitted: {late}", status=422
        )
    try:
        with ports.db.begin() as conn:
            nl.submit(conn, n, now, audit=auditor(session, now))
    except nl.NewsletterError as exc:
        return refuse(request, str(exc))
    return shown(n, "submitted")


def when_refused(ports: ConsolePorts, n: nl.Newsletter, local_at: str | None = None) -> str:
    """What the broadcast's dry run says against the delivery time (outside the send window,
    passed in the clinic's zone), in the console's words; empty when it plans."""
    at = _local_at(local_at if local_at is not None else n.local_at or "")
    if at is None:
        return "Choose the local date and time it should arrive."
    try:
        services(ports).broadcast(
            n.slug, n.file_name, n.sources, nl.rule_data(n.audience), at, True, n.time_sensitive
        )
    except ValueError as exc:
        return str(exc).replace("--at ", "").replace("--segment", "audience") + "."
    return ""


async def decide(
    request: Request, newsletter_id: str, session: Session, db: Database, *, approving: bool
) -> Response:
    """A clinician's decision with its note (approve, request changes). Who may take it is the
    workflow's rule (campaigns.review): anyone else is refused with 403 before anything runs;
    a newsletter no longer awaiting review is a 409."""
    note = _text(await request.form(), "note", 2000)
    n = find(db, newsletter_id)
    who = actor(session)
    try:
        may_approve(who, n, nl.KIND) if approving else may_review(who, nl.KIND)
    except ReviewError as exc:
        raise Forbidden(str(exc).capitalize() + ".") from None
    now = utcnow()
    try:
        with db.begin() as conn:
            if approving:
                nl.approve(conn, n, who, note, now, audit=auditor(session, now))
            else:
                nl.request_changes(conn, n, who, note, now, audit=auditor(session, now))
    except nl.NewsletterError as exc:
        return refuse(request, str(exc))
    return shown(n, "approved" if approving else "changes")


@router.post(BASE + "/{newsletter_id}/approve", include_in_schema=False)
async def approve(request: Request, newsletter_id: str, session: Staff, db: Db) -> Response:
    return await decide(request, newsletter_id, session, db, approving=True)


@router.post(BASE + "/{newsletter_id}/changes", include_in_schema=False)
async def changes(request: Request, newsletter_id: str, session: Staff, db: Db) -> Response:
    return await decide(request, newsletter_id, session, db, approving=False)


def _people(count: int) -> str:
    return f"{count:,} {'person' if count == 1 else 'people'}"


def _local_words(local_at: str | None) -> str:
    at = _local_at(local_at or "")
    return f"{at:%A %d %B %Y at %H:%M}" if at else "—"


@router.post(BASE + "/{newsletter_id}/schedule", include_in_schema=False)
def schedule(
    request: Request,
    newsletter_id: str,
    session: Staff,
    ports: Ports,
    confirm: str = Form("", max_length=10),
) -> Response:
    """Schedule an approved newsletter, after a page saying how many people get it and when
    (the broadcast's dry run: the same count the schedule then makes)."""
    n = find(ports.db, newsletter_id)
    if n.state != nl.APPROVED:
        return refuse(request, "Only a newsletter a clinician approved can be scheduled.")
    local_at = _local_at(n.local_at or "")
    if local_at is None:
        return refuse(request, "This newsletter has no delivery time.", 422)
    try:
        result = services(ports).broadcast(
            n.slug,
            n.file_name,
            n.sources,
            nl.rule_data(n.audience),
            local_at,
            confirm != "yes",
            n.time_sensitive,
        )
        if confirm != "yes":
            return page(
                request,
                "confirm.html",
                {
                    "title": f"Schedule “{n.subject}”?",
                    "message": (
                        f"It goes to {_people(result['recipients'])}, arriving "
                        f"{_local_words(n.local_at)} in each person's own time zone. Once "
                        "scheduled it can be cancelled, but emails already sent cannot be "
                        "recalled."
                    ),
                    "action": f"{BASE}/{n.id}/schedule",
                    "button": f"Schedule for {_people(result['recipients'])}",
                    "cancel": f"{BASE}/{n.id}",
                },
            )
    except ValueError as exc:
        details = "; ".join(getattr(exc, "details", []))
        return refuse(request, f"Not scheduled: {exc}{'. ' + details if details else ''}", 422)
    now = utcnow()
    with ports.db.begin() as conn:
        nl.mark_scheduled(
            conn,
            n,
            now,
            audit=auditor(session, now),
            detail={"recipients": result["recipients"], "local_at": n.local_at},
        )
    response = shown(n)
    return flash(response, f"Scheduled for {result['recipients']:,} people.")


@router.post(BASE + "/{newsletter_id}/cancel", include_in_schema=False)
def cancel(
    request: Request,
    newsletter_id: str,
    session: Staff,
    db: Db,
    confirm: str = Form("", max_length=10),
) -> Response:
    """Cancel a newsletter, after a page saying how many emails will not be sent."""
    n = find(db, newsletter_id)
    if n.state == nl.CANCELLED:
        return shown(n)
    if confirm != "yes":
        waiting = 0
        if n.state == nl.SCHEDULED:
            with db.begin() as conn:
                waiting = bc.progress(conn, bc.campaign_id_for(n.slug)).waiting
        return page(
            request,
            "confirm.html",
            {
                "title": f"Cancel “{n.subject}”?",
                "message": (
                    f"{waiting:,} {'email' if waiting == 1 else 'emails'} still waiting will "
                    "not be sent; emails already handed to the provider cannot be recalled."
                    if n.state == nl.SCHEDULED
                    else "Nobody has been sent it. A cancelled newsletter cannot be scheduled "
                    "again (its id is never reused), but it can be duplicated."
                ),
                "action": f"{BASE}/{n.id}/cancel",
                "button": "Cancel this newsletter",
                "cancel": f"{BASE}/{n.id}",
            },
        )
    now = utcnow()
    with db.begin() as conn:
        stopped = dropped = 0
        if n.state == nl.SCHEDULED:
            # The same cancel as `clinicmail campaigns cancel-broadcast`.
            stopped, dropped = bc.cancel(conn, bc.campaign_id_for(n.slug), now)
        nl.mark_cancelled(
            conn, n, now, audit=auditor(session, now), detail={"not_sent": stopped + dropped}
        )
    return flash(shown(n), f"Cancelled: {stopped + dropped:,} emails will not be sent.")


@router.post(BASE + "/broadcasts/{slug}/cancel", include_in_schema=False)
def cancel_broadcast(
    request: Request,
    slug: str,
    session: Staff,
    db: Db,
    confirm: str = Form("", max_length=10),
) -> Response:
    """Cancel a one-off email scheduled from the command line (``clinicmail campaigns
    broadcast``), after a page saying how many emails will not be sent: the same as
    ``clinicmail campaigns cancel-broadcast``, audited as the signed-in person."""
    campaign_id = bc.campaign_id_for(slug)
    with db.begin() as conn:
        stored = bc.find(conn, campaign_id)
        if stored is None:
            raise NotFound("No such newsletter", "There is no scheduled newsletter with this id.")
        progress = bc.progress(conn, campaign_id)
    waiting = progress.waiting
    if bc.state(stored, progress) == "cancelled":
        return flash(RedirectResponse(BASE, 303), f"“{slug}” was already cancelled.")
    if confirm != "yes":
        return page(
            request,
            "confirm.html",
            {
                "title": f"Cancel “{slug}”?",
                "message": (
                    f"{waiting:,} {'email' if waiting == 1 else 'emails'} still waiting will "
                    "not be sent; emails already handed to the provider cannot be recalled."
                ),
                "action": f"{BASE}/broadcasts/{slug}/cancel",
                "button": "Cancel this newsletter",
                "cancel": BASE,
            },
        )
    now = utcnow()
    with db.begin() as conn:
        stopped, dropped = bc.cancel(conn, campaign_id, now)
        audit.record(
            conn,
            session.user,
            "broadcast.cancel",
            "broadcast",
            slug,
            now,
            {"not_sent": stopped + dropped},
        )
    return flash(
        RedirectResponse(BASE, 303), f"Cancelled: {stopped + dropped:,} emails will not be sent."
    )


@router.post(BASE + "/{newsletter_id}/retime", include_in_schema=False)
def retime(
    request: Request,
    newsletter_id: str,
    session: Staff,
    ports: Ports,
    local_at: str = Form("", max_length=16),
) -> Response:
    """A new delivery time for an approved newsletter, without a new review: the approval
    covers the text and the audience, which do not change (audited, before and after)."""
    n = find(ports.db, newsletter_id)
    if n.state != nl.APPROVED:
        return refuse(request, "Only an approved newsletter not yet scheduled can be re-timed.")
    now = utcnow()
    wanted = local_at.strip()
    late = nl.timing_problem(wanted, ports.clinic_zone(), now, lead=timedelta(0))
    late = late or when_refused(ports, n, wanted)
    if late:
        return refuse(request, f"Not re-timed: {late}", 422)
    try:
        with ports.db.begin() as conn:
            nl.retime(conn, n, wanted, now, audit=auditor(session, now))
    except nl.NewsletterError as exc:
        return refuse(request, str(exc))
    return flash(
        shown(n),
        f"New time: {_local_words(wanted)} local time. The text is as the clinician approved "
        "it, so no new review is needed.",
    )


@router.post(BASE + "/{newsletter_id}/test-send", include_in_schema=False)
def test_send(request: Request, newsletter_id: str, session: Staff, ports: Ports) -> Response:
    """The saved newsletter to the signed-in staff member only, through the transport, as the
    step editor's test send: marked as a test, outside the ledger, so never in stats."""
    n = find(ports.db, newsletter_id)
    assert ports.renderer is not None  # the app always hands the console one
    campaign, problems = bc.build(
        bc.campaign_id_for(n.slug),
        n.file_name,
        n.sources,
        parse_rule(nl.rule_data(n.audience)),
        ports.renderer,
    )
    if campaign is None or problems:
        return refuse(request, "Fix the problems shown before sending a test.", 422)
    try:
        rendered = render_variant(ports.renderer, campaign, campaign.steps[0].default)
    except TemplateProblem as exc:
        return refuse(request, f"No test sent: {exc.message}", 422)
    outcome = ports.send_test_copy(session.user.email, rendered, "there")
    now = utcnow()
    with ports.db.begin() as conn:
        audit.record(
            conn, session.user, "newsletter.test_send", TARGET, n.id, now, {"outcome": outcome}
        )
    return flash(shown(n), f"Test of the saved newsletter sent to {session.user.email}: {outcome}.")


def _copy_slug(db: Database, slug: str) -> str:
    """A free id for a copy of ``slug``: ``<slug>-copy``, then ``-copy-2`` … (ids are never
    reused, so taken ones, scheduled broadcasts included, are skipped)."""
    with db.begin() as conn:
        for i in range(1, 1000):
            tail = "-copy" if i == 1 else f"-copy-{i}"
            candidate = slug[: 54 - len(tail)].rstrip("-") + tail
            if not nl.slug_taken(conn, candidate) and not bc.find(
                conn, bc.campaign_id_for(candidate)
            ):
                return candidate
    raise nl.NewsletterError("no free id for a copy; create the newsletter anew")


@router.post(BASE + "/{newsletter_id}/duplicate", include_in_schema=False)
def duplicate(request: Request, newsletter_id: str, session: Staff, ports: Ports) -> Response:
    """A new draft with this newsletter's text and audience (any state, cancelled included),
    under a new id and without a delivery time: it is reviewed like any draft."""
    n = find(ports.db, newsletter_id)
    assert ports.renderer is not None  # the app always hands the console one
    now = utcnow()
    fields = nl.Fields(n.subject, n.preheader, n.body, n.audience, None, n.time_sensitive)
    try:
        slug = _copy_slug(ports.db, n.slug)
        with ports.db.begin() as conn:
            made = nl.create(
                conn,
                slug=slug,
                fields=fields,
                editor_id=session.user.id,
                editor=session.user.email,
                now=now,
                renderer=ports.renderer,
            )
            audit.record(
                conn,
                session.user,
                "newsletter.create",
                TARGET,
                made.id,
                now,
                {"after": _snapshot(made), "copied_from": n.slug},
            )
    except nl.NewsletterError as exc:
        return refuse(request, f"Not copied: {exc}", 422)
    return flash(shown(made), f"Copied from {n.slug} as a new draft: choose when it should arrive.")


def _revision(form: Any) -> int | None:
    """The revision the editor's page read (absent from an older page: not checked)."""
    value = str(form.get("revision") or "")
    return int(value) if value.isdigit() else None


def _snapshot(n: nl.Newsletter) -> dict[str, Any]:
    """What the audit log keeps of a newsletter's text and audience."""
    return n.fields.values()
