"""Load and validate campaign folders, collecting every problem with file and line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from campaigns.definitions import (
    STEP_FILE,
    Campaign,
    CampaignMeta,
    Step,
    StepMeta,
    Variant,
    VariantMeta,
)
from templates import ClinicInfo, Content, Renderer, TemplateProblem
from templates.system import split_front_matter

CAMPAIGN_VARIABLES = frozenset({"first_name", "clinic"})
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


class CatalogError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class Catalog:
    """All campaigns loaded from one directory, keyed by id, in a stable order."""

    def __init__(self, campaigns: Iterable[Campaign]) -> None:
        self.campaigns: dict[str, Campaign] = {c.id: c for c in campaigns}

    def get(self, campaign_id: str) -> Campaign | None:
        return self.campaigns.get(campaign_id)

    def active(self) -> list[Campaign]:
        return [c for c in self.campaigns.values() if c.active]

    def __iter__(self) -> Any:
        return iter(self.campaigns.values())

    def __len__(self) -> int:
        return len(self.campaigns)


def _line_of(text: str, loc: tuple[int | str, ...], offset: int = 0) -> int | None:
    """Find the YAML line of a pydantic error location by walking the composed node tree."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line = (key.start_mark.line if key is not None else match.start_mark.line) + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line + offset if line is not None else None


def _model_problems(
    model: type[BaseModel], data: Any, text: str, file: str, offset: int = 0
) -> tuple[Any, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
            # Tagged-union locations carry the tag as a path part; keep only real keys.
            path = ".".join(str(p) for p in loc) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(Problem(file, _line_of(text, loc, offset), f"{path}: {msg}"))
        return None, problems


def _read_yaml(path: Path, text: str, file: str, offset: int = 0) -> tuple[Any, list[Problem]]:
    try:
        return yaml.safe_load(text) or {}, []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 + offset if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(file, line, f"invalid YAML: {problem}")]


def _load_markdown(
    path: Path, rel: str, model: type[VariantMeta]
) -> tuple[Any, str, int, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, "", 0, [Problem(rel, None, f"cannot read: {exc}")]
    try:
        fm, body, body_line = split_front_matter(text)
    except ValueError as exc:
        return None, "", 0, [Problem(rel, 1, str(exc))]
    data, problems = _read_yaml(path, fm, rel, offset=1)
    if problems:
        return None, body, body_line, problems
    if not isinstance(data, dict):
        return None, body, body_line, [Problem(rel, 2, "front matter must be a mapping")]
    meta, problems = _model_problems(model, data, fm, rel, offset=1)
    return meta, body, body_line, problems


def _check_template(renderer: Renderer, variant: Variant, allowed: frozenset[str]) -> list[Problem]:
    try:
        renderer.check(
            Content(subject=variant.subject, preheader=variant.preheader, body=variant.body),
            allowed,
        )
    except TemplateProblem as exc:
        line = variant.body_line + exc.line - 1 if exc.line and "body" in exc.message[:5] else None
        return [Problem(variant.file, line, exc.message)]
    return []


def load_campaign(
    folder: Path, root: Path, renderer: Renderer
) -> tuple[Campaign | None, list[Problem]]:
    rel_folder = folder.relative_to(root.parent) if folder.is_relative_to(root.parent) else folder
    yaml_path = folder / "campaign.yaml"
    rel = str(rel_folder / "campaign.yaml")
    if not yaml_path.is_file():
        return None, [Problem(str(rel_folder), None, "missing campaign.yaml")]
    text = yaml_path.read_text(encoding="utf-8")
    data, problems = _read_yaml(yaml_path, text, rel)
    if problems:
        return None, problems
    meta, problems = _model_problems(CampaignMeta, data, text, rel)
    if meta is not None and meta.id != folder.name:
        problems.append(
            Problem(
                rel,
                _line_of(text, ("id",)),
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
        smeta, body, body_line, sprobs = _load_markdown(path, srel, StepMeta)
        problems += sprobs
        if smeta is None:
            continue
        default = Variant(
            id="default",
            subject=smeta.subject,
            preheader=smeta.preheader,
            body=body,
            file=srel,
            body_line=body_line,
        )
        problems += _check_template(renderer, default, CAMPAIGN_VARIABLES)
        variants: list[Variant] = []
        for ref in smeta.variants:
            vpath = folder / ref.file
            vrel = str(rel_folder / ref.file)
            referenced.add(ref.file)
            if "/" in ref.file or not vpath.is_file():
                problems.append(Problem(srel, None, f"variant {ref.id!r}: missing file {ref.file}"))
                continue
            vmeta, vbody, vline, vprobs = _load_markdown(vpath, vrel, VariantMeta)
            problems += vprobs
            if vmeta is None:
                continue
            variant = Variant(
                id=ref.id,
                subject=vmeta.subject,
                preheader=vmeta.preheader,
                body=vbody,
                file=vrel,
                body_line=vline,
                when=ref.when,
            )
            problems += _check_template(renderer, variant, CAMPAIGN_VARIABLES)
            variants.append(variant)
        steps.append(
            Step(
                id=slug,
                number=number,
                delay_days=smeta.delay_days,
                when=smeta.when,
                default=default,
                variants=tuple(variants),
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


def load_catalog(root: Path, renderer: Renderer | None = None) -> tuple[Catalog, list[Problem]]:
    """Load every campaign folder under ``root``; returns the good ones and every problem."""
    renderer = renderer or Renderer(DEMO_CLINIC)
    if not root.is_dir():
        return Catalog([]), [Problem(str(root), None, "campaigns directory does not exist")]
    campaigns: list[Campaign] = []
    problems: list[Problem] = []
    for folder in sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    ):
        campaign, probs = load_campaign(folder, root, renderer)
        problems += probs
        if campaign is not None:
            campaigns.append(campaign)
    return Catalog(campaigns), problems
