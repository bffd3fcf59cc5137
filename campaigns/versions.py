"""Campaign content as versions in the database; folders on disk are the import/export format.

A version is a snapshot of one campaign folder (``campaign.yaml`` and its ``.md`` files, as
text), moving through::

    draft → in_review → approved (immutable) → active → retired
      ↑________|  (changes requested)

Only drafts change. Only a clinician approves, never a version they edited. At most one
version of a campaign is active; activating one retires the one before. Bundled content is
imported active but *unreviewed* (``reviewed_at`` is None): it sends out of the box, and one
clinician's review of that version clears the notice. A review falls due again after the
review interval (``CLINICMAIL_REVIEW_INTERVAL``).

Every process loads the active versions (:func:`load_active`); a generation number in the
``kv`` table changes whenever the active set changes, so long-running processes can reload.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)

from campaigns import enrollment, review
from campaigns.definitions import STEP_FILE, Campaign, StepMeta, Variant, VariantMeta
from campaigns.loader import (
    CAMPAIGN_VARIABLES,
    Problem,
    check_template,
    load_campaign,
    parse_markdown,
)
from campaigns.review import CLI, Actor, Audit, Kind, ReviewError
from campaigns.tables import ReviewedContent, review_columns, review_fields
from storage.schema import UTCDateTime, kv, metadata
from templates import ClinicInfo, Renderer

__all__ = ["CLI", "Actor", "Audit", "Version", "VersionError"]

DRAFT, IN_REVIEW, APPROVED, ACTIVE, RETIRED = "draft", "in_review", "approved", "active", "retired"
STATES = (DRAFT, IN_REVIEW, APPROVED, ACTIVE, RETIRED)
BUNDLED, IMPORTED, CONSOLE = "bundled", "import", "console"
GENERATION_KEY = "content_generation"

campaign_versions = Table(
    "campaign_versions",
    metadata,
    Column("id", String(32), primary_key=True),  # the version id the ledger records
    Column("campaign_id", String(64), nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2, 3 … per campaign
    Column("origin", String(16), nullable=False),  # bundled | import | console
    Column("files", JSON, nullable=False),  # {file name: text}
    Column("files_sha256", String(64), nullable=False),
    Column("based_on", String(32)),
    *review_columns(),  # editor_ids: staff ids who changed this version
    Column("review_due_at", UTCDateTime()),
    Column("activated_at", UTCDateTime()),
    UniqueConstraint("campaign_id", "number"),
)
Index(
    "ix_campaign_versions_campaign_id_state",
    campaign_versions.c.campaign_id,
    campaign_versions.c.state,
)


class VersionError(ReviewError):
    """A change the workflow does not allow; the message says why in plain words."""


class TemplateRefused(VersionError):
    """A draft not saved because a template in it cannot be rendered safely; ``problems`` are
    the findings (file, line, plain message), as the preview shows them."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"Not saved: {first}{more}")
        self.problems = problems


@dataclass(frozen=True)
class Version(ReviewedContent):
    campaign_id: str
    number: int
    origin: str
    files: dict[str, str]
    files_sha256: str
    based_on: str | None
    review_due_at: datetime | None
    activated_at: datetime | None
    reviewed_by_id: int | None = None

    @property
    def clinic_reviewed(self) -> bool:
        """False for content no clinician of this installation has approved (the bundled
        library as installed, say): see :func:`campaigns.review.clinic_approved`."""
        return review.clinic_approved(self)

    @property
    def editable(self) -> bool:
        return self.state == DRAFT

    def review_due(self, now: datetime) -> bool:
        return self.review_due_at is None or self.review_due_at <= now


def _describe(v: Version) -> dict[str, object]:
    """How the audit log names a version (opaque ids only)."""
    return {"campaign": v.campaign_id, "number": v.number}


KIND = Kind(campaign_versions, "version", "campaign_version", "content", VersionError, _describe)


def _version(row: object) -> Version:
    r = row._mapping  # type: ignore[attr-defined]
    return Version(
        campaign_id=r["campaign_id"],
        number=r["number"],
        origin=r["origin"],
        files=dict(r["files"]),
        files_sha256=r["files_sha256"],
        based_on=r["based_on"],
        **review_fields(r),
        review_due_at=r["review_due_at"],
        reviewed_by_id=r["reviewed_by_id"],
        activated_at=r["activated_at"],
    )


def files_digest(files: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(files), sort_keys=True).encode("utf-8")).hexdigest()


def folder_files(folder: Path) -> dict[str, str]:
    """The files of a campaign folder that make up its content."""
    names = ["campaign.yaml", *sorted(p.name for p in folder.glob("*.md"))]
    return {
        name: (folder / name).read_text(encoding="utf-8")
        for name in names
        if (folder / name).is_file()
    }


# -- reading ------------------------------------------------------------------------------------
def get(conn: Connection, version_id: str) -> Version | None:
    row = conn.execute(
        select(campaign_versions).where(campaign_versions.c.id == version_id)
    ).first()
    return _version(row) if row else None


def require(conn: Connection, version_id: str) -> Version:
    found = get(conn, version_id) if len(version_id) <= 32 else None
    if found is None:
        raise VersionError("there is no such content version")
    return found


def versions_of(conn: Connection, campaign_id: str) -> list[Version]:
    """Newest first."""
    rows = conn.execute(
        select(campaign_versions)
        .where(campaign_versions.c.campaign_id == campaign_id)
        .order_by(campaign_versions.c.number.desc())
    ).all()
    return [_version(r) for r in rows]


def in_state(conn: Connection, *states: str) -> list[Version]:
    rows = conn.execute(
        select(campaign_versions)
        .where(campaign_versions.c.state.in_(states))
        .order_by(campaign_versions.c.campaign_id, campaign_versions.c.number)
    ).all()
    return [_version(r) for r in rows]


def campaign_ids(conn: Connection) -> list[str]:
    return list(
        conn.execute(
            select(campaign_versions.c.campaign_id)
            .distinct()
            .order_by(campaign_versions.c.campaign_id)
        ).scalars()
    )


def has_any(conn: Connection) -> bool:
    return conn.execute(select(func.count()).select_from(campaign_versions)).scalar_one() > 0


def generation(conn: Connection) -> str:
    value = conn.execute(select(kv.c.value).where(kv.c.key == GENERATION_KEY)).scalar()
    return str(value or "0")


def _bump(conn: Connection) -> None:
    new = secrets.token_hex(8)
    done = conn.execute(update(kv).where(kv.c.key == GENERATION_KEY).values(value=new))
    if not done.rowcount:
        conn.execute(insert(kv).values(key=GENERATION_KEY, value=new))


# -- loading ------------------------------------------------------------------------------------
def parse(
    campaign_id: str, files: Mapping[str, str], renderer: Renderer
) -> tuple[Campaign | None, list[Problem]]:
    """Check one version's files exactly as ``campaigns validate`` checks a folder."""
    campaign, problems = _parsed(campaign_id, tuple(sorted(files.items())), renderer.clinic)
    return campaign, list(problems)


# Versions are immutable once approved, and every command loads the active ones: a process
# parses each (campaign, files, clinic) once. The clinic is in the key because templates are
# checked by rendering them with its details. (Each template's check is also remembered on its
# own, in templates.render, so a version that differs in one file re-checks only that file.)
@lru_cache(maxsize=256)
def _parsed(
    campaign_id: str, files: tuple[tuple[str, str], ...], clinic: ClinicInfo
) -> tuple[Campaign | None, tuple[Problem, ...]]:
    campaign, found = _parse(campaign_id, dict(files), Renderer(clinic))
    return campaign, tuple(found)


def _parse(
    campaign_id: str, files: Mapping[str, str], renderer: Renderer
) -> tuple[Campaign | None, list[Problem]]:
    bad = [n for n in files if "/" in n or "\\" in n or n.startswith(".")]
    if bad:
        return None, [Problem(bad[0], None, "file names must be plain names inside the folder")]
    with tempfile.TemporaryDirectory(prefix="clinicmail-content-") as tmp:
        root = Path(tmp) / "campaigns"
        folder = root / campaign_id
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        return load_campaign(folder, root, renderer)


def load_active(
    conn: Connection, renderer: Renderer, *, require_approval: bool = False
) -> tuple[list[Campaign], dict[str, list[Problem]]]:
    """The active version of every campaign, each tagged with its ``version_id``, and the
    problems of each active version that cannot be built (by campaign id).

    ``require_approval`` (the transport reaches patients): a version no clinician of this
    installation approved is loaded ``held``, so nothing is planned from it."""
    campaigns: list[Campaign] = []
    broken: dict[str, list[Problem]] = {}
    for v in in_state(conn, ACTIVE):
        campaign, found = parse(v.campaign_id, v.files, renderer)
        if found:
            broken[v.campaign_id] = found
        elif campaign is not None:
            held = require_approval and not v.clinic_reviewed
            campaigns.append(campaign.model_copy(update={"version_id": v.id, "held": held}))
    return campaigns, broken


def file_variant(name: str, text: str) -> tuple[Variant | None, str, list[Problem]]:
    """One step or variant file on its own, as the editor shows it: the variant it renders
    (None when its front matter cannot be read), its front matter and the front matter's
    problems."""
    model = StepMeta if STEP_FILE.match(name) else VariantMeta
    parsed, problems = parse_markdown(text, name, model)
    if parsed is None:
        return None, "", problems
    variant = Variant(
        id="default",
        subject=parsed.meta.subject,
        preheader=parsed.meta.preheader,
        body=parsed.body,
        file=name,
        body_line=parsed.body_line,
        checkin=bool(getattr(parsed.meta, "checkin", False)),
    )
    return variant, parsed.front_matter, problems


def template_problems(
    renderer: Renderer, files: Mapping[str, str], *, stored: Mapping[str, str] | None = None
) -> list[Problem]:
    """What the template check finds (syntax, the sandbox's rules and bounds, errors while
    rendering, raw HTML) in each step and variant file of ``files`` whose text is not already in
    ``stored``: a bounded render, so a template built to exhaust memory is a finding, never an
    allocation. Front matter that cannot be read is left to validation (a draft may be
    unfinished); a text stored before this check existed is reported when opened."""
    known = set((stored or {}).values())
    found: list[Problem] = []
    for name, text in sorted(files.items()):
        if not name.endswith(".md") or text in known:
            continue
        variant, front_matter, _ = file_variant(name, text)
        if variant is not None:
            found += check_template(renderer, variant, front_matter, CAMPAIGN_VARIABLES)
    return found


# -- writing ------------------------------------------------------------------------------------
def _next_number(conn: Connection, campaign_id: str) -> int:
    top = conn.execute(
        select(func.max(campaign_versions.c.number)).where(
            campaign_versions.c.campaign_id == campaign_id
        )
    ).scalar()
    return int(top or 0) + 1


def create(
    conn: Connection,
    campaign_id: str,
    files: Mapping[str, str],
    *,
    state: str,
    origin: str,
    actor: Actor,
    now: datetime,
    based_on: str | None = None,
    submitted: bool = False,
) -> Version:
    """Store a new version (never an approved one: approval is given here, by a clinician,
    through :func:`approve`). ``submitted`` stamps a version created in review."""
    vid = secrets.token_hex(16)
    values: dict[str, object] = {
        "id": vid,
        "campaign_id": campaign_id,
        "number": _next_number(conn, campaign_id),
        "state": state,
        "origin": origin,
        "files": dict(files),
        "files_sha256": files_digest(files),
        "based_on": based_on,
        "editor_ids": [actor.id] if actor.id is not None and origin == CONSOLE else [],
        "created_by": actor.name,
        "created_at": now,
        "updated_at": now,
        "activated_at": now if state == ACTIVE else None,
    }
    if submitted:
        values["submitted_at"] = now
    if state == ACTIVE:
        _retire_active(conn, campaign_id, now)
    conn.execute(insert(campaign_versions).values(**values))
    if state == ACTIVE:
        _bump(conn)
    return require(conn, vid)


def _retire_active(conn: Connection, campaign_id: str, now: datetime) -> None:
    conn.execute(
        update(campaign_versions)
        .where(campaign_versions.c.campaign_id == campaign_id, campaign_versions.c.state == ACTIVE)
        .values(state=RETIRED, updated_at=now, revision=campaign_versions.c.revision + 1)
    )


def draft_of(conn: Connection, campaign_id: str) -> Version | None:
    """The campaign's open draft (there is at most one), if any."""
    row = conn.execute(
        select(campaign_versions)
        .where(campaign_versions.c.campaign_id == campaign_id, campaign_versions.c.state == DRAFT)
        .order_by(campaign_versions.c.number.desc())
    ).first()
    return _version(row) if row else None


def live(conn: Connection, campaign_id: str) -> Version | None:
    """The campaign's active version, if any."""
    return next((v for v in versions_of(conn, campaign_id) if v.state == ACTIVE), None)


def awaiting_review(conn: Connection, campaign_id: str) -> list[Version]:
    """The versions of a campaign that wait for a clinician: those submitted for review (oldest
    first), or else its live version when no clinician here has approved it (the bundled
    library as installed)."""
    history = versions_of(conn, campaign_id)
    waiting = sorted((v for v in history if v.state == IN_REVIEW), key=lambda v: v.number)
    if waiting:
        return waiting
    return [v for v in history if v.state == ACTIVE and not review.clinic_approved(v)]


def start_draft(
    conn: Connection, campaign_id: str, actor: Actor, now: datetime, *, audit: Audit
) -> Version:
    """The open draft, or a new one copied from the live version (the newest one only when
    nothing is live), so a draft never silently drops what a clinician approved."""
    existing = draft_of(conn, campaign_id)
    if existing is not None:
        return existing
    history = versions_of(conn, campaign_id)
    if not history:
        raise VersionError(f"there is no campaign {campaign_id!r}")
    base = next((v for v in history if v.state == ACTIVE), history[0])
    made = create(
        conn,
        campaign_id,
        base.files,
        state=DRAFT,
        origin=CONSOLE,
        actor=actor,
        now=now,
        based_on=base.id,
    )
    audit(
        conn,
        "content.draft",
        KIND.target_type,
        made.id,
        {**_describe(made), "based_on": base.number},
    )
    return made


def create_campaign(
    conn: Connection,
    campaign_id: str,
    files: Mapping[str, str],
    actor: Actor,
    now: datetime,
    *,
    audit: Audit,
) -> Version:
    """A new campaign as its first version, a draft (audited ``content.create``): nothing is
    sent until a clinician approves it and it is made live. Refused when the id is taken."""
    if versions_of(conn, campaign_id):
        raise VersionError(f"there is already a campaign with the id {campaign_id!r}")
    made = create(conn, campaign_id, files, state=DRAFT, origin=CONSOLE, actor=actor, now=now)
    audit(conn, "content.create", KIND.target_type, made.id, _describe(made))
    return made


def save_draft(
    conn: Connection,
    v: Version,
    files: Mapping[str, str],
    actor: Actor,
    now: datetime,
    *,
    audit: Audit,
    renderer: Renderer,
    expected_revision: int | None = None,
    action: str = "edit",
    detail: Mapping[str, object] | None = None,
) -> Version:
    """Replace a draft's files (only a draft changes; approved content never does). A page that
    read ``expected_revision`` and is out of date gets :class:`campaigns.review.StaleRevision`;
    a changed step or variant whose template cannot be rendered safely is refused with
    :class:`TemplateRefused` and nothing is stored."""
    current = require(conn, v.id)
    found = template_problems(renderer, files, stored=current.files)
    if found:
        raise TemplateRefused(found)
    review.save(
        conn,
        KIND,
        current,
        now,
        actor=actor,
        audit=audit,
        expected_revision=expected_revision,
        action=action,
        detail=detail,
        files=dict(files),
        files_sha256=files_digest(files),
    )
    return require(conn, v.id)


def submit(
    conn: Connection, v: Version, renderer: Renderer, now: datetime, *, audit: Audit
) -> Version:
    """Draft → in review, only when the content passes validation."""
    _, problems = parse(v.campaign_id, v.files, renderer)
    if problems:
        raise VersionError(f"fix the {len(problems)} problem(s) shown before asking for review")
    review.submit(conn, KIND, v, now, audit=audit)
    return require(conn, v.id)


def request_changes(
    conn: Connection, v: Version, reviewer: Actor, note: str, now: datetime, *, audit: Audit
) -> Version:
    """In review → draft, with the reviewer's note."""
    review.request_changes(conn, KIND, v, reviewer, note, now, audit=audit)
    return require(conn, v.id)


def approve(
    conn: Connection,
    v: Version,
    reviewer: Actor,
    note: str,
    now: datetime,
    interval: timedelta,
    *,
    audit: Audit,
) -> Version:
    """A clinician's review: in review → approved; or, for live content no clinician here has
    approved yet (the bundled library) or whose review is due, the review is recorded and it
    stays live. Never by someone who edited the version (:func:`campaigns.review.may_approve`)."""
    frm, to = ((ACTIVE,), ACTIVE) if v.state == ACTIVE else ((IN_REVIEW,), APPROVED)
    review.approve(
        conn,
        KIND,
        v,
        reviewer,
        note,
        now,
        audit=audit,
        frm=frm,
        to=to,
        review_due_at=now + interval,
    )
    if v.state == ACTIVE:
        enrollment.wake(conn, v.campaign_id, now)
        _bump(conn)  # the service reloads: the content may now reach patients
    return require(conn, v.id)


def activate(conn: Connection, v: Version, now: datetime, *, audit: Audit) -> Version:
    """Approved → active; the campaign's previously active version is retired."""
    if v.state != APPROVED:
        raise VersionError("only an approved version can be made active")
    _retire_active(conn, v.campaign_id, now)
    review.move(
        conn, KIND, v, (APPROVED,), ACTIVE, now, audit=audit, action="activate", activated_at=now
    )
    enrollment.wake(conn, v.campaign_id, now)
    _bump(conn)
    return require(conn, v.id)


def dropped_by(conn: Connection, v: Version) -> list[Version]:
    """The clinician-approved versions whose changes activating ``v`` would drop: each went
    live after ``v``'s base was made (a higher number) and is not among the versions ``v``
    descends from. Empty when ``v`` carries everything approved since its base; the caller
    then activates without asking twice."""
    history = {x.id: x for x in versions_of(conn, v.campaign_id)}
    ancestors: set[str] = set()
    cur = v.based_on
    while cur is not None and cur not in ancestors:
        ancestors.add(cur)
        cur = history[cur].based_on if cur in history else None
    base = history.get(v.based_on) if v.based_on else None
    return sorted(
        (
            x
            for x in history.values()
            if x.id != v.id
            and x.id not in ancestors
            and x.activated_at is not None
            and review.clinic_approved(x)
            and (base is None or x.number > base.number)
        ),
        key=lambda x: x.number,
    )


def restore(conn: Connection, v: Version, actor: Actor, now: datetime, *, audit: Audit) -> Version:
    """A retired version back as a new draft with its files (``based_on`` names it), to be
    reviewed like any draft. Refused while the campaign has an open draft."""
    if v.state != RETIRED:
        raise VersionError("only a retired version can be restored")
    if draft_of(conn, v.campaign_id) is not None:
        raise VersionError(
            "this campaign already has an open draft: submit or retire it before restoring "
            "an older version"
        )
    made = create(
        conn,
        v.campaign_id,
        v.files,
        state=DRAFT,
        origin=CONSOLE,
        actor=actor,
        now=now,
        based_on=v.id,
    )
    audit(
        conn,
        "content.restore",
        KIND.target_type,
        made.id,
        {**_describe(made), "restored_from": v.number},
    )
    return made


def retire(conn: Connection, v: Version, now: datetime, *, audit: Audit) -> Version:
    """Stop using a version (an active one: the campaign stops sending new steps)."""
    review.move(
        conn,
        KIND,
        v,
        (ACTIVE, APPROVED, IN_REVIEW, DRAFT),
        RETIRED,
        now,
        audit=audit,
        action="retire",
    )
    if v.state == ACTIVE:
        _bump(conn)
    return require(conn, v.id)


# -- import and export ---------------------------------------------------------------------------
def export_files(v: Version) -> dict[str, str]:
    """The folder for a version: its files. An approval never travels with a folder: content
    imported anywhere waits for a clinician of that installation (campaigns.review)."""
    return dict(v.files)


def is_step_file(name: str) -> bool:
    return bool(STEP_FILE.match(name))
