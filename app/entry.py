"""The ``clinicmail`` console script, and how a process builds what lives as long as it does:
with the cyclic garbage collector paused (:func:`long_lived`).

Importing the command line makes a few hundred thousand objects (modules, classes, SQL and
pydantic schemas), and ``serve`` makes as many again importing and building the HTTP app; all
of them live as long as the process. With the collector running, it walks them again and again
while they are being made: about a quarter of a command's start-up. Once made they are frozen
(moved out of the collector's view), so the collections a long ``serve`` makes later skip them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived() -> Iterator[None]:
    """Run the block with the collector paused, then freeze what it made. For imports and
    objects kept for the life of the process only: a cycle made here is never collected."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def main() -> None:
    """Console entry point (``clinicmail``); the command line itself is :func:`app.cli.main`."""
    with long_lived():
        from app.cli import main as command_line
    command_line()
