"""``docs/benchmarks.md`` has two writers: ``bench/delivery.py`` writes the main report (the
whole file, as before) and ``bench/scaleout.py`` its own section, between two marker comments,
after it. Each keeps what the other wrote."""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- bench/scaleout.py: begin (this section is replaced by its next run) -->"
END = "<!-- bench/scaleout.py: end -->"


def _scaleout_part(text: str) -> str | None:
    if BEGIN not in text or END not in text:
        return None
    start = text.index(BEGIN)
    return text[start : text.index(END, start) + len(END)]


def write_report(path: Path, report: str) -> None:
    """``bench/delivery.py``: the file becomes ``report``, followed by the scale-out section
    already there (if any)."""
    kept = _scaleout_part(path.read_text(encoding="utf-8")) if path.exists() else None
    text = report.rstrip("\n") + "\n"
    if kept is not None:
        text += "\n" + kept + "\n"
    path.write_text(text, encoding="utf-8")


def write_scaleout(path: Path, section: str) -> None:
    """``bench/scaleout.py``: replace the scale-out section (``section`` holds no markers), or
    add it at the end; the rest of the file is left as it is."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{section.strip(chr(10))}\n{END}"
    kept = _scaleout_part(old)
    new = old.replace(kept, block) if kept is not None else old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new, encoding="utf-8")
