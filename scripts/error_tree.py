"""The error tree, drawn from the code: every exception class of ours under ``ClinicmailError``.

``python scripts/error_tree.py`` prints it; ``--write`` puts it between the markers in
``docs/architecture.md``. ``tests/test_errors_tree.py`` fails when the drawing there differs
from what the code says.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "core",
    "storage",
    "templates",
    "alerts",
    "outgoing",
    "subscribers",
    "campaigns",
    "engagement",
    "staff",
    "console",
    "deliverability",
    "api",
    "transports",
    "scheduler",
    "app",
)
BEGIN, END = "<!-- error-tree -->", "<!-- /error-tree -->"
DRAWING = ROOT / "docs" / "architecture.md"


def modules() -> list[ModuleType]:
    """Every module of ours (Alembic's scripts run only inside Alembic)."""
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(package)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if ".migrations" not in info.name:
                found.append(importlib.import_module(info.name))
    return found


def exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for module in modules()
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == module.__name__
    ]


def _path(cls: type) -> str:
    return cls.__module__.replace(".", "/") + ".py"


def _kept(cls: type, ours: set[type]) -> str:
    """What else it is: the built-in or library classes it keeps, and any second parent of
    ours (drawn once, under its first)."""
    ours_after_first = [b for b in cls.__bases__ if b in ours][1:]
    names = [b.__name__ for b in cls.__bases__ if b not in ours and b is not Exception]
    names += [f"also a {b.__name__}" for b in ours_after_first]
    return ", ".join(names)


def draw() -> str:
    """The tree as text: one line per class, its file and what else it is."""
    from core.errors import ClinicmailError

    ours = {c for c in exception_classes() if issubclass(c, ClinicmailError)} | {ClinicmailError}
    children: dict[type, list[type]] = {}
    for cls in ours:
        if cls is ClinicmailError:
            continue
        parent = next(b for b in cls.__bases__ if b in ours)  # the first base of ours
        children.setdefault(parent, []).append(cls)
    lines = ["ClinicmailError"]

    def walk(cls: type, prefix: str) -> None:
        kids = sorted(
            children.get(cls, []), key=lambda c: (c.__module__ != "core.errors", c.__name__)
        )
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            label = f"{prefix}{'└── ' if last else '├── '}{kid.__name__}"
            where = _path(kid) if kid.__module__ != "core.errors" else ""
            kept = _kept(kid, ours)
            line = f"{label:<40} {where:<36} {kept}".rstrip()
            lines.append(line)
            walk(kid, prefix + ("    " if last else "│   "))

    walk(ClinicmailError, "")
    return "\n".join(lines)


def replace_block(text: str, tree: str) -> str:
    """``text`` with the fenced block between the markers replaced by ``tree``."""
    start = text.index(BEGIN) + len(BEGIN)
    return text[:start] + "\n```\n" + tree + "\n```\n" + text[text.index(END) :]


def drawn(text: str) -> str:
    """The tree as drawn between the markers."""
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    return "\n".join(line.rstrip() for line in block.strip().strip("`").strip("\n").splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update the drawings in place")
    args = parser.parse_args()
    tree = draw()
    if not args.write:
        print(tree)
        return 0
    DRAWING.write_text(replace_block(DRAWING.read_text(encoding="utf-8"), tree), encoding="utf-8")
    print(f"wrote {DRAWING.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
