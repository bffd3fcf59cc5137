"""Template checks that found nothing, remembered so a process need not repeat them.

Checking a template renders it in full (:meth:`templates.Renderer.check`), and every command
loads the whole library: about a third of a short command's time went on checking the same
templates the previous command had checked. A check's verdict depends only on the template, the
clinic's details, the variables it may use and the code that checks it, so a passed check is
remembered by a digest of all four (:func:`digest`); a digest made by other code (another
version of this package or of the libraries that render) never matches. Only passes are
remembered: a template with a problem is checked again every time, and says why.

The memory lives for the process and holds each pass under the clinic it was made for;
:mod:`campaigns.content` lays the passes other processes stored in the database over it
(:meth:`CheckMemory.trust`) and stores the clinic's passes the database lacks
(:meth:`CheckMemory.passes`): one process may open several databases of the same clinic (a
test run does), and the second must be given what the first checked.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from types import ModuleType

import css_inline
import inscriptis
import jinja2
import markdown_it
import markupsafe

_PACKAGE = Path(__file__).resolve().parent
# The libraries a verdict depends on; each is identified by its installed file (path, size and
# modification time change when it is upgraded), which costs a stat where asking the package
# metadata for versions cost tens of milliseconds.
_LIBRARIES: tuple[ModuleType, ...] = (jinja2, markupsafe, markdown_it, css_inline, inscriptis)


@cache
def fingerprint() -> str:
    """The checking code: every file of this package, the rendering libraries, Python."""
    h = hashlib.sha256(sys.version.encode())
    for path in sorted(p for p in _PACKAGE.rglob("*") if p.is_file() and p.suffix != ".pyc"):
        h.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes())
    for module in _LIBRARIES:
        where = Path(module.__file__ or module.__name__)
        stat = where.stat()
        h.update(f"{module.__name__}:{where}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def digest(*verdict_of: object) -> str:
    """The digest of a check of ``verdict_of`` (values with a stable ``repr``: the clinic, the
    content without its name, the sorted variables) by this code."""
    return hashlib.sha256(f"{fingerprint()}\0{verdict_of!r}".encode()).hexdigest()[:32]


class CheckMemory:
    """Digests of passed checks, trusted from storage or made here, each under the clinic it
    was made for (:func:`clinic_scope`)."""

    def __init__(self) -> None:
        self._passed: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return any(key in keys for keys in self._passed.values())

    def passed(self, key: str, scope: str) -> None:
        with self._lock:
            self._passed.setdefault(scope, set()).add(key)

    def trust(self, keys: Iterable[str], scope: str) -> None:
        """Passes another process made with the same code (the caller compared fingerprints),
        stored beside the checks of the clinic ``scope`` names."""
        with self._lock:
            self._passed.setdefault(scope, set()).update(keys)

    def passes(self, scope: str) -> set[str]:
        """The passes this process knows for the clinic ``scope`` names."""
        with self._lock:
            return set(self._passed.get(scope, ()))

    def forget(self) -> None:
        """Start empty, as a new process does."""
        with self._lock:
            self._passed.clear()


def clinic_scope(clinic: object) -> str:
    """The name the memory files a clinic's passes under (a digest of its details)."""
    return digest(clinic)


memory = CheckMemory()
