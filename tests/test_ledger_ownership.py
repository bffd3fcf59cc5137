"""The ledger owns reading ``sends``: no module of ours but the ledger and its read module names
the table, neither as the SQLAlchemy object nor in SQL text (migrations aside: they build it).
There are no exceptions: a statement that joins the sends with a table above the ledger (the
provider events) is a named function of ``campaigns.ledger_reads`` that is handed that table.

Parsed, not imported: the check sees every module, including code paths a test never runs.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

OWNERS = {"campaigns/ledger.py", "campaigns/ledger_reads.py"}
LEDGER_MODULES = {"campaigns.ledger", "campaigns.ledger_reads"}

# SQL naming the table: a keyword that takes a table, then (maybe after other tables) ``sends``.
SQL_NAMING_SENDS = re.compile(
    r"\b(?:from|join|update|into|table|analyze|truncate)\s+"
    r"(?:[\"`]?\w+[\"`]?\s*,\s*)*[\"`]?sends[\"`]?\b",
    re.IGNORECASE,
)


def _our_modules() -> list[Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = config["tool"]["importlinter"]["root_packages"]
    found: list[Path] = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts:
                continue
            found.append(rel)
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose, not SQL)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
        ):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def references(source: str) -> list[str]:
    """Where ``source`` names the ``sends`` table: ``line: what``."""
    tree = ast.parse(source)
    found: list[str] = []
    ledger_names: set[str] = set()  # local names bound to a ledger module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in LEDGER_MODULES:
            for alias in node.names:
                if alias.name in ("sends", "*"):
                    found.append(f"{node.lineno}: imports {node.module}.{alias.name}")
        if isinstance(node, ast.ImportFrom) and node.module == "campaigns":
            for alias in node.names:
                if f"campaigns.{alias.name}" in LEDGER_MODULES:
                    ledger_names.add(alias.asname or alias.name)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in LEDGER_MODULES and alias.asname:
                    ledger_names.add(alias.asname)
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "sends":
            owner = ast.unparse(node.value)
            if owner in ledger_names or owner in LEDGER_MODULES:
                found.append(f"{node.lineno}: uses {owner}.sends")
        if isinstance(node, ast.Call) and node.args:
            name = ast.unparse(node.func).rsplit(".", 1)[-1]
            first = node.args[0]
            if (
                name in ("table", "Table")
                and isinstance(first, ast.Constant)
                and first.value == "sends"
            ):
                found.append(f"{node.lineno}: builds a {name}('sends')")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and SQL_NAMING_SENDS.search(node.value)
        ):
            found.append(f"{node.lineno}: SQL text naming sends: {node.value[:60]!r}")
    return found


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from campaigns.ledger import SENT, sends\n", True),
        ("from campaigns.ledger import sends as ledger_sends\n", True),
        ("from campaigns.ledger_reads import *\n", True),
        ("from campaigns import ledger\nledger.sends.c.status\n", True),
        ("from campaigns import ledger as lg\nx = lg.sends\n", True),
        ("import campaigns.ledger as L\nL.sends\n", True),
        ("from sqlalchemy import text\ntext('ANALYZE sends, enrollments')\n", True),
        ("q = 'SELECT count(*) FROM sends WHERE status = 1'\n", True),
        ("q = 'update \"sends\" set status = 1'\n", True),
        ("from sqlalchemy import table\ntable('sends')\n", True),
        # prose and other things called sends are not the table
        ('"""Counts distinct sends, from stored events."""\n', False),
        ("from campaigns import ledger\nbatch.sends.append(1)\n", False),
        ("def sends() -> None: ...\n", False),
        ("TABLES = ('subscribers', 'sends')\n", False),
        ("from campaigns.ledger_reads import dispatch_counts\n", False),
    ],
)
def test_the_check_sees_a_reference(source: str, caught: bool) -> None:
    assert bool(references(source)) is caught, references(source)


def test_only_the_ledger_names_the_sends_table() -> None:
    modules = _our_modules()
    assert len(modules) > 100  # the packages were found
    offenders: dict[str, list[str]] = {}
    for rel in modules:
        key = rel.as_posix()
        if key in OWNERS:
            continue
        found = references((ROOT / rel).read_text())
        if found:
            offenders[key] = found
    assert offenders == {}, (
        "read the ledger through campaigns.ledger_reads (add a named function there):\n"
        + "\n".join(f"{m}: {'; '.join(f)}" for m, f in sorted(offenders.items()))
    )


def test_the_owners_do_name_it() -> None:
    """The check is not vacuous: it finds the table where it lives."""
    assert references((ROOT / "campaigns/ledger_reads.py").read_text())


def test_the_statistics_as_they_were_written_would_fail() -> None:
    """What engagement/stats.py and engagement/history.py did before their joins moved into the
    ledger's read API is caught: no module is let off."""
    before = (
        "from campaigns.ledger import CAMPAIGN, SENT\n"
        "from campaigns.ledger import sends as ledger_sends\n"
        "from engagement.tables import email_events\n"
        "def weekly(conn):\n"
        "    sends = ledger_sends\n"
        "    return email_events.join(sends, sends.c.send_id == email_events.c.send_id)\n"
    )
    assert references(before)
