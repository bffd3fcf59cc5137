"""``clinicmail stats --chart FILE.png``: human engagement by week of sending and by step.

Two panels sharing the week axis: the unique human open rate and the unique click rate
(unique opens or clicks / emails sent) of each step, one line per (campaign, step). Drawn with
matplotlib's Agg backend (no display needed) straight to the file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from core.errors import InputError
from engagement.stats import WeekRow

FORMATS = (".png", ".svg", ".pdf")


class ChartError(InputError, ValueError):
    """The chart cannot be written where asked (one line for the user)."""


def check_target(path: Path) -> None:
    """Fail early, before any database work, when ``path`` cannot be written."""
    if path.suffix.lower() not in FORMATS:
        raise ChartError(f"--chart must end in {', '.join(FORMATS)} (got {path.name!r})")
    if path.is_dir():
        raise ChartError(f"--chart {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ChartError(f"cannot write the chart: folder {parent} does not exist")
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
        if not existed:  # only a probe: leave nothing behind if drawing fails later
            path.unlink()
    except OSError as exc:
        raise ChartError(f"cannot write the chart to {path}: {exc.strerror or exc}") from None


def draw(
    rows: Sequence[WeekRow], path: Path, *, numbers: dict[tuple[str, str], int] | None = None
) -> int:
    """Write the chart; returns how many lines were drawn (one per campaign step with sends)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    numbers = numbers or {}
    series: dict[tuple[str, str], list[WeekRow]] = defaultdict(list)
    for r in rows:
        if r.sent:
            series[(r.campaign_id, r.step_id)].append(r)

    def order(key: tuple[str, str]) -> tuple[str, int, str]:
        return (key[0], numbers.get(key, 10_000), key[1])

    fig, (opens_ax, clicks_ax) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    try:
        for key in sorted(series, key=order):
            points = sorted(series[key], key=lambda r: r.week)
            weeks = [r.week for r in points]
            number = numbers.get(key)
            label = f"{key[0]} · {number}. {key[1]}" if number else f"{key[0]} · {key[1]}"
            opens_ax.plot(weeks, [r.unique_opens / r.sent for r in points], marker="o", label=label)
            clicks_ax.plot(weeks, [r.unique_clicks / r.sent for r in points], marker="o")
        opens_ax.set_title("Human opens by week sent and step")
        opens_ax.set_ylabel("unique opens / sent")
        clicks_ax.set_title("Clicks by week sent and step")
        clicks_ax.set_ylabel("unique clicks / sent")
        clicks_ax.set_xlabel("week the email was sent (Monday, UTC)")
        for ax in (opens_ax, clicks_ax):
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
        if series:
            opens_ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            opens_ax.text(
                0.5,
                0.5,
                "no campaign email sent yet",
                ha="center",
                va="center",
                transform=opens_ax.transAxes,
            )
        fig.autofmt_xdate()
        fig.tight_layout()
        try:
            fig.savefig(path, dpi=120)
        except OSError as exc:
            raise ChartError(f"cannot write the chart to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return len(series)
