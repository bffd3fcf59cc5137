"""Everything the CLI prints goes through here: text from the database (names, subjects, ids
from files) must not be able to drive the user's terminal.

:func:`clean` drops C0 and C1 control characters (escape sequences, bell, backspace, carriage
return …) except newline and tab, DEL, and the Unicode bidirectional overrides that can make a
line read differently from what it holds. :func:`echo` is ``click.echo`` after :func:`clean`;
:func:`echo_json` prints one JSON document the same way; :func:`console` makes a rich console
that cleans every piece of text it writes the same way; :func:`print_table` is how every ``list``
command prints its rows.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.segment import Segment

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """``text`` without characters that control a terminal (newline and tab stay)."""
    return _UNSAFE.sub("", text)


def echo(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    click.echo(clean(str(message)), err=err, nl=nl)


def echo_json(data: Any, *, indent: int | None = None, ensure_ascii: bool = True) -> None:
    """``data`` as one JSON document (the ``--json`` output of every command)."""
    echo(json.dumps(data, indent=indent, ensure_ascii=ensure_ascii))


class _CleanConsole(Console):
    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        # Every piece of text, table cells included, is cleaned just before it is written;
        # rich's own control segments (cursor moves, styles) are left alone.
        return super()._render_buffer(
            s if s.control else Segment(clean(s.text), s.style) for s in buffer
        )


# Output that goes to a file or a pipe is not wrapped at 80 columns: scripts read whole lines.
PIPED_WIDTH = 240


def console(**kwargs: Any) -> Console:
    """A rich console for tables and styled lines whose text carries no control characters.

    As wide as the terminal (or ``COLUMNS``); :data:`PIPED_WIDTH` when writing to a pipe."""
    if "width" not in kwargs and not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        kwargs["width"] = PIPED_WIDTH
    return _CleanConsole(**kwargs)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Rows under a line of headers, columns aligned, no borders, nothing before the first
    column: what every ``list`` command prints (``users``, ``apikeys``, ``webhooks``). As wide as
    :func:`console`; a cell too long for its column folds within it, never across columns."""
    from rich.table import Table  # only the list commands need it: the rest start faster

    table = Table(*headers, box=None, pad_edge=False)
    for column in table.columns:
        column.overflow = "fold"
    for row in rows:
        table.add_row(*row)
    out = console(markup=False, highlight=False)
    with out.capture() as captured:  # cleaned as it is rendered (see _CleanConsole)
        out.print(table)
    # rich pads the last column to its width: a script reading the lines gets no trailing blanks
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))
