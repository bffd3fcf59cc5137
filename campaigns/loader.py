"""Load and validate campaign folders, collecting every problem with file and line."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from campaigns.definitions import (
    STEP_FILE,
    Campaign,
    CampaignMeta,
    Step,
    StepMeta,
    Variant,
    VariantMeta,
    VariantRef,
)
from campaigns.references import RuleSite, check_sites
from campaigns.rendering import content_of
from core import yamltext
from core.errors import InputError
from templates import ClinicInfo, Renderer, TemplateProblem
from templates.system import split_front_matter

CAMPAIGN_VARIABLES = frozenset({"first_name", "clinic", "warning_signs"})
DEMO_CLINIC = ClinicInfo(
    name="Demo Back & Neck Clinic",
    address="1 High Street, London W1 1AA",
    from_email="hello@clinic.example",
    booking_url="https://clinic.example/book",
    base_url="http://127.0.0.1:8000",
)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


def campaign_of(problem: Problem, root: Path) -> str | None:
    """The campaign folder a problem is in (None for a problem with the library as a whole)."""
    parts = Path(problem.file).parts
    if len(parts) >= 2 and parts[0] == root.name and (root / parts[1]).is_dir():
        return parts[1]
    return None


def set_aside(
    catalog: Catalog, problems: list[Problem], root: Path
) -> tuple[Catalog, dict[str, list[Problem]]] | None:
    """For the running service: keep every good campaign and stand in a *paused* placeholder
    for each broken one, so its subscribers wait where they are (a missing campaign would end
    their series) while every other campaign keeps sending. Returns None when a problem is
    not inside one campaign folder (the library as a whole is unusable)."""
    broken: dict[str, list[Problem]] = {}
    for p in problems:
        cid = campaign_of(p, root)
        if cid is None:
            return None
        broken.setdefault(cid, []).append(p)
    return with_placeholders(list(catalog), broken), broken


def with_placeholders(campaigns: list[Campaign], broken: Mapping[str, object]) -> Catalog:
    """The good campaigns, plus a paused placeholder for each broken campaign id."""
    kept = [c for c in campaigns if c.id not in broken]
    for cid in sorted(broken):
        meta = CampaignMeta.model_construct(id=cid, name=cid, status="paused")
        kept.append(Campaign(meta=meta, steps=()))
    return Catalog(kept)


class CatalogError(InputError, ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class StoredCampaigns(Protocol):
    """Campaigns kept in the database rather than in files (one-off broadcasts).

    ``get`` may open its own short transaction, so it must not be called while the caller holds
    a write transaction on SQLite; code that plans inside a transaction calls ``preload`` with
    its own connection first.
    """

    def get(self, campaign_id: str) -> Campaign | None: ...

    def preload(self, conn: Connection, campaign_ids: Iterable[str]) -> None: ...


class Catalog:
    """All campaigns loaded from one directory, keyed by id, in a stable order.

    Iterating, ``active()`` and ``len()`` cover the library only; ``get`` also finds a stored
    campaign (a broadcast) when a :class:`StoredCampaigns` source is attached.
    """

    def __init__(self, campaigns: Iterable[Campaign]) -> None:
        self.campaigns: dict[str, Campaign] = {c.id: c for c in campaigns}
        self.stored: StoredCampaigns | None = None

    def get(self, campaign_id: str) -> Campaign | None:
        found = self.campaigns.get(campaign_id)
        if found is None and self.stored is not None:
            return self.stored.get(campaign_id)
        return found

    def preload(self, conn: Connection, campaign_ids: Iterable[str]) -> None:
        """Make ``get`` answer from memory for these ids (call inside a planning transaction)."""
        if self.stored is not None:
            missing = {c for c in campaign_ids if c not in self.campaigns}
            if missing:
                self.stored.preload(conn, missing)

    def active(self) -> list[Campaign]:
        return [c for c in self.campaigns.values() if c.active]

    def __iter__(self) -> Any:
        return iter(self.campaigns.values())

    def __len__(self) -> int:
        return len(self.campaigns)


def line_of(text: str, loc: tuple[int | str, ...], offset: int = 0) -> int | None:
    """Find the YAML line of a pydantic error location by walking the composed node tree."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        # Tagged unions (segment rules) repeat the tag in the location, e.g. when.all.all.1:
        # a part that names nothing at this level is skipped rather than ending the walk.
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                continue
            line = pair[0].start_mark.line + 1
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            continue
        else:
            break
    return line + offset if line is not None else None


def _path(loc: tuple[int | str, ...]) -> str:
    """``when.all.all.1.has.has`` → ``when.all[1].has``: drop repeated union tags."""
    out = ""
    previous: int | str | None = None
    for part in loc:
        if part == previous:
            continue
        previous = part
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _plain(err: Any, path: str, fields: Iterable[str] = ()) -> str:
    """Pydantic's message, in words a campaign author can act on."""
    kind = err["type"]
    field = path.rsplit(".", 1)[-1]
    if kind == "missing":
        return f"{path} is missing; add a line '{field}: …'"
    if kind == "extra_forbidden":
        known = f" (known: {', '.join(sorted(fields))})" if fields and "." not in path else ""
        return f"{path} is not a known setting; check the spelling{known}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{path}: {msg}"


def _model_problems(
    model: type[BaseModel], data: Any, text: str, file: str, offset: int = 0
) -> tuple[Any, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
            problems.append(
                Problem(
                    file, line_of(text, loc, offset), _plain(err, _path(loc), model.model_fields)
                )
            )
        return None, problems


def _read_yaml(text: str, file: str, offset: int = 0) -> tuple[Any, list[Problem]]:
    try:
        return yamltext.safe_load(text) or {}, []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        context_mark = getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        # An unclosed bracket or quote is only noticed at the end of the text; the line where
        # the unclosed thing starts is the one to fix.
        if context_mark is not None and (mark is None or mark.index >= len(text.rstrip())):
            mark = context_mark
            what = str(getattr(exc, "context", "")).removeprefix("while parsing a ")
            problem = f"{problem}; the {what} that starts on this line is not closed"
        line = mark.line + 1 + offset if mark is not None else None
        if "mapping values are not allowed" in problem:
            problem += (
                " (a value that contains a colon followed by a space must be in quotes, "
                'e.g. name: "Back care: week one")'
            )
        return None, [Problem(file, line, f"invalid YAML: {problem}")]


@dataclass(frozen=True)
class Markdown:
    meta: Any
    front_matter: str
    body: str
    body_line: int


def variant_of(ref: VariantRef, parsed: Markdown, file: str, **extra: Any) -> Variant:
    """The variant a step's ``variants:`` entry names, from its parsed file."""
    return Variant(
        id=ref.id,
        subject=parsed.meta.subject,
        preheader=parsed.meta.preheader,
        body=parsed.body,
        file=file,
        body_line=parsed.body_line,
        when=ref.when,
        **extra,
    )


def missing_variant_file(
    file: str, front_matter: str, index: int, ref: VariantRef, beside: str
) -> Problem:
    """The ``index``-th ``variants:`` entry of ``file`` names a file that is not there."""
    return Problem(
        file,
        line_of(front_matter, ("variants", index, "file"), offset=1),
        f"variant {ref.id!r}: the file {ref.file} does not exist; create it next to {beside}, "
        "or fix the name under 'file:'",
    )


def _load_markdown(
    path: Path, rel: str, model: type[VariantMeta]
) -> tuple[Markdown | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(rel, None, f"cannot read: {exc}")]
    return parse_markdown(text, rel, model)


def parse_markdown(
    text: str, rel: str, model: type[VariantMeta]
) -> tuple[Markdown | None, list[Problem]]:
    """One step-style Markdown text (front matter + body), checked against ``model``."""
    try:
        fm, body, body_line = split_front_matter(text)
    except ValueError as exc:
        return None, [Problem(rel, 1, str(exc))]
    data, problems = _read_yaml(fm, rel, offset=1)
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [Problem(rel, 2, "front matter must be a mapping of settings")]
    meta, problems = _model_problems(model, data, fm, rel, offset=1)
    if meta is None:
        return None, problems
    return Markdown(meta, fm, body, body_line), problems


def check_template(
    renderer: Renderer, variant: Variant, front_matter: str, allowed: frozenset[str]
) -> list[Problem]:
    try:
        renderer.check(
            content_of(variant),
            allowed,
        )
    except TemplateProblem as problem:
        found = []
        for exc in problem.all:  # every problem in the file, not only the first
            line: int | None = None
            if exc.part == "body":
                line = variant.body_line + (exc.line or 1) - 1 if exc.line else None
            elif exc.part in ("subject", "preheader"):
                line = line_of(front_matter, (exc.part,), offset=1)
            found.append(Problem(variant.file, line, exc.message))
        return found
    return []


def load_campaign(
    folder: Path, root: Path, renderer: Renderer, sites: list[RuleSite] | None = None
) -> tuple[Campaign | None, list[Problem]]:
    """Load one campaign folder. ``sites`` collects where its rules are written, so the catalog
    can check ``clicked:`` / ``opened:`` references once every campaign is known."""
    sites = sites if sites is not None else []
    rel_folder = folder.relative_to(root.parent) if folder.is_relative_to(root.parent) else folder
    yaml_path = folder / "campaign.yaml"
    rel = str(rel_folder / "campaign.yaml")
    if not yaml_path.is_file():
        return None, [Problem(str(rel_folder), None, "missing campaign.yaml")]
    text = yaml_path.read_text(encoding="utf-8")
    data, problems = _read_yaml(text, rel)
    if problems:
        return None, problems
    meta, problems = _model_problems(CampaignMeta, data, text, rel)
    if meta is not None:
        sites.append(RuleSite(rel, text, 0, meta.audience, folder.name, None))
    if meta is not None and meta.id != folder.name:
        problems.append(
            Problem(
                rel,
                line_of(text, ("id",)),
                f"id {meta.id!r} must match the folder name {folder.name!r}",
            )
        )
    steps: list[Step] = []
    step_files = sorted(p for p in folder.glob("*.md") if STEP_FILE.match(p.name))
    variant_files = {p.name for p in folder.glob("*.md") if not STEP_FILE.match(p.name)}
    referenced: set[str] = set()
    if not step_files:
        problems.append(
            Problem(str(rel_folder), None, "no step files (expected 01-slug.md, 02-slug.md …)")
        )
    numbers: dict[int, str] = {}
    for path in step_files:
        m = STEP_FILE.match(path.name)
        assert m is not None
        number, slug = int(m.group(1)), m.group(2)
        srel = str(rel_folder / path.name)
        if number in numbers:
            problems.append(
                Problem(srel, None, f"step number {number} is also used by {numbers[number]}")
            )
        numbers[number] = path.name
        step_md, sprobs = _load_markdown(path, srel, StepMeta)
        problems += sprobs
        if step_md is None:
            continue
        smeta = step_md.meta
        index = len(steps)
        fm = step_md.front_matter
        if smeta.when is not None:
            sites.append(RuleSite(srel, fm, 1, smeta.when, folder.name, index))
        for ref in smeta.variants:
            sites.append(RuleSite(srel, fm, 1, ref.when, folder.name, index))
        default = Variant(
            id="default",
            subject=smeta.subject,
            preheader=smeta.preheader,
            body=step_md.body,
            file=srel,
            body_line=step_md.body_line,
            checkin=smeta.checkin,
            cta=smeta.cta,
            review=smeta.review,
        )
        problems += check_template(renderer, default, step_md.front_matter, CAMPAIGN_VARIABLES)
        variants: list[Variant] = []
        for i, ref in enumerate(smeta.variants):
            vpath = folder / ref.file
            vrel = str(rel_folder / ref.file)
            referenced.add(ref.file)
            if "/" in ref.file or "\\" in ref.file or not vpath.is_file():
                problems.append(
                    missing_variant_file(srel, step_md.front_matter, i, ref, "this step")
                )
                continue
            variant_md, vprobs = _load_markdown(vpath, vrel, VariantMeta)
            problems += vprobs
            if variant_md is None:
                continue
            variant = variant_of(
                ref,
                variant_md,
                vrel,
                checkin=smeta.checkin,
                cta=variant_md.meta.cta,
                review=variant_md.meta.review,
            )
            problems += check_template(
                renderer, variant, variant_md.front_matter, CAMPAIGN_VARIABLES
            )
            variants.append(variant)
        steps.append(
            Step(
                id=slug,
                number=number,
                delay_days=smeta.delay_days,
                when=smeta.when,
                default=default,
                variants=tuple(variants),
                until_goal=smeta.cta == "book" if smeta.until_goal is None else smeta.until_goal,
            )
        )
    for orphan in sorted(variant_files - referenced):
        problems.append(
            Problem(
                str(rel_folder / orphan),
                None,
                "not a step file (NN-slug.md) and no step lists it as a variant",
            )
        )
    if problems or meta is None:
        return None, problems
    return Campaign(meta=meta, steps=tuple(steps)), []


def _library_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for folder in sorted(root.iterdir()):
        digest.update(f"\0{folder.name}\0{folder.is_dir()}".encode())
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    digest.update(f"\0{path.name}\0".encode())
                    digest.update(path.read_bytes())
    return digest.hexdigest()


def load_catalog(root: Path, renderer: Renderer | None = None) -> tuple[Catalog, list[Problem]]:
    """Load every campaign folder under ``root``; returns the good ones and every problem."""
    clinic = renderer.clinic if renderer is not None else DEMO_CLINIC
    if not root.is_dir():
        return Catalog([]), [Problem(str(root), None, "campaigns directory does not exist")]
    campaigns, problems = _checked_library(str(root), clinic, _library_digest(root))
    return Catalog(campaigns), list(problems)


# Checking a library renders every template (most of a second for the bundled one), and the
# files and the clinic decide the result: a process that reads the same library again (each
# command seeds from it) reuses what it found. ``digest`` (of every file under ``root``) is in
# the key so that a changed file is checked again.
@lru_cache(maxsize=8)
def _checked_library(
    root: str, clinic: ClinicInfo, digest: str
) -> tuple[tuple[Campaign, ...], tuple[Problem, ...]]:
    campaigns, problems = _load_catalog(Path(root), Renderer(clinic))
    return tuple(campaigns), tuple(problems)


def _load_catalog(root: Path, renderer: Renderer) -> tuple[list[Campaign], list[Problem]]:
    campaigns: list[Campaign] = []
    problems: list[Problem] = []
    sites: list[RuleSite] = []
    for folder in sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    ):
        campaign, probs = load_campaign(folder, root, renderer, sites)
        problems += probs
        if campaign is not None:
            campaigns.append(campaign)
    steps = {c.id: [s.id for s in c.steps] for c in campaigns}
    # A folder that failed to load has its own problems reported; references into it are not
    # checked against steps nobody could read.
    broken = {p.name for p in root.iterdir() if p.is_dir()} - set(steps)
    problems += [
        Problem(p.file, p.line, p.message)
        for p in check_sites([s for s in sites if s.campaign_id not in broken], steps, broken)
    ]
    if not campaigns and not problems:
        # An empty library would silently stop every campaign email.
        problems.append(
            Problem(
                str(root),
                None,
                "no campaigns here: each campaign is a folder holding a campaign.yaml and its "
                "step files (check CLINICMAIL_CAMPAIGNS_DIR)",
            )
        )
    return campaigns, problems
