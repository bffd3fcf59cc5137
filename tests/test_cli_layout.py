"""The command line is one package whose modules share only public names: no module reaches
into another's private helpers, and nothing is mounted by name at run time."""

from __future__ import annotations

import ast
from pathlib import Path

import click

import app.cli
from app.cli import cli

PACKAGE = Path(app.cli.__file__).parent


def _imports(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_no_private_name_crosses_a_module_and_nothing_is_loaded_by_name() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        for module, name in _imports(path):
            assert module != "importlib", path.name
            if module.startswith(("scheduler", "campaigns", "subscribers", "engagement", "staff")):
                assert not name.startswith("_"), f"{path.name} imports {module}.{name}"


def test_every_command_has_help() -> None:
    def walk(command: click.Command, path: str) -> list[str]:
        missing = [] if (command.help or "").strip() or path == "" else [path]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                missing += walk(sub, f"{path} {name}".strip())
        return missing

    assert walk(cli, "") == []
