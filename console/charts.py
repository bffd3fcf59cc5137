"""Server-rendered SVG charts: no script, no build step, readable without colour.

Each chart is drawn from the same rows as the table printed beside it; every point and bar
carries a ``<title>`` (a tooltip and a screen-reader label) and ``data-series``/``data-value``
attributes, so what the chart shows can be checked against the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Colour-blind-safe (Okabe-Ito) colours, dark enough against white; every series also has a
# distinct marker or dash so colour is never the only cue.
COLOURS = ("#0b5cad", "#b35900", "#1d6b34", "#a4161a", "#6a3d9a", "#4a5360")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")
W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 14, 44


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = float(10 ** (len(str(int(value))) - 1))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= m * step:
            return m * step
    return value


def _fmt(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def _frame(chart_id: str, title: str, labels: Sequence[str], top: float) -> list[str]:
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = [
        f'<svg id="{escape(chart_id)}" viewBox="0 0 {W} {H}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
    ]
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c9d1db"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#4a5360">{_fmt(top * i / 4)}</text>'
        )
    n = max(len(labels), 1)
    every = max(1, n // 8)
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = LEFT + plot_w * (i + 0.5) / n
        out.append(
            f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" font-size="11" '
            f'fill="#4a5360">{escape(label)}</text>'
        )
    return out


def _legend(series: Sequence[Series], kind: str) -> list[str]:
    out = []
    x = LEFT
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        y = H - 10
        if kind == "line":
            out.append(
                f'<line x1="{x}" x2="{x + 18}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" '
                f'stroke-width="2.5" stroke-dasharray="{DASHES[i % len(DASHES)]}"/>'
            )
        else:
            out.append(f'<rect x="{x}" y="{y - 10}" width="14" height="10" fill="{colour}"/>')
        out.append(
            f'<text x="{x + 22}" y="{y}" font-size="11" fill="#1b1f24">{escape(s.name)}</text>'
        )
        x += 30 + 7 * len(s.name)
    return out


def line_chart(
    chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series]
) -> Markup:
    """One line per series over ``labels`` (weeks), points marked and titled."""
    top = _nice_max(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = _frame(chart_id, title, labels, top)
    n = max(len(labels), 1)
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        points = [
            (LEFT + plot_w * (j + 0.5) / n, TOP + plot_h - plot_h * (v / top))
            for j, v in enumerate(s.values)
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5" '
                f'stroke-dasharray="{DASHES[i % len(DASHES)]}"/>'
            )
        for j, (x, y) in enumerate(points):
            value = s.values[j]
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}" '
                f'data-series="{escape(s.name)}" data-label="{escape(labels[j])}" '
                f'data-value="{_fmt(value)}"><title>{escape(s.name)}, {escape(labels[j])}: '
                f"{_fmt(value)}</title></circle>"
            )
    out += _legend(series, "line")
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text and attribute above is escaped


def bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = False,
) -> Markup:
    """Grouped (or stacked) bars per label."""
    if stacked:
        totals = [sum(s.values[j] for s in series) for j in range(len(labels))]
        top = _nice_max(max(totals, default=0))
    else:
        top = _nice_max(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = _frame(chart_id, title, labels, top)
    n = max(len(labels), 1)
    slot = plot_w / n
    width = slot * 0.7 / (1 if stacked else max(len(series), 1))
    for j, label in enumerate(labels):
        base: float = TOP + plot_h
        for i, s in enumerate(series):
            value = s.values[j]
            height = plot_h * value / top
            x = LEFT + slot * j + slot * 0.15 + (0 if stacked else i * width)
            y = base - height
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
                f'fill="{COLOURS[i % len(COLOURS)]}" data-series="{escape(s.name)}" '
                f'data-label="{escape(label)}" data-value="{_fmt(value)}"><title>'
                f"{escape(s.name)}, {escape(label)}: {_fmt(value)}</title></rect>"
            )
            if stacked:
                base = y
    out += _legend(series, "bar")
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text and attribute above is escaped
