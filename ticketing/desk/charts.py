"""Small SVG charts for the reports, drawn on the server as text: no JavaScript, no library.

Every piece of text that goes in (a title, a team's or a producer's name, a week) is
escaped here with ``html.escape`` (also quotes, for attributes), and numbers are
formatted here; the result is a ``Svg`` whose ``__html__`` lets jinja insert it
unescaped — the only way a chart reaches a page, so nothing else is ever marked safe.
A chart is ``role="img"`` with a ``<title>`` and an ``aria-label``; the page shows the
same numbers in a table beside it (a chart is never the only place a number is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Svg", "bar_chart", "line_chart"]

_WIDTH = 640
_BAR = 22  # height of one bar row
_LABEL_WIDTH = 200  # room for the names left of the bars
_LABEL_CHARS = 30  # longer names are cut (the table beside has them whole)
_PLOT_HEIGHT = 180
_MARGIN = 40
# Presentation attributes, not CSS: the console's CSP allows no inline styles, and the
# chart should look the same wherever its markup goes.  Colours as console.css's.
_INK, _ACCENT, _MUTED = "#1b1f24", "#0b5cad", "#4a5360"


@dataclass(frozen=True)
class Svg:
    """An SVG document built by this module from escaped parts."""

    markup: str

    def __html__(self) -> str:
        """What jinja (markupsafe) inserts as is: the markup was escaped as it was built."""
        return self.markup

    def __str__(self) -> str:
        return self.markup


def _text(value: str) -> str:
    return escape(value, quote=True)


def _number(value: float) -> str:
    """``12``, ``12.5``: as the tables beside show it."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _label(value: str) -> str:
    return value if len(value) <= _LABEL_CHARS else value[: _LABEL_CHARS - 1] + "…"


def _document(title: str, height: int, body: Sequence[str]) -> Svg:
    name = _text(title)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{name}"'
        f' viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" class="chart"'
        f' font-family="system-ui, sans-serif" font-size="12" fill="{_INK}">'
        f"<title>{name}</title>"
    )
    return Svg(head + "".join(body) + "</svg>")


def _nothing(title: str) -> Svg:
    return _document(title, 40, ['<text x="10" y="25" class="chart-empty">No data</text>'])


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str = "") -> Svg:
    """Horizontal bars, one per (name, value), in the order given, with the value written
    after each bar."""
    if not bars:
        return _nothing(title)
    top = max(value for _, value in bars) or 1.0
    room = _WIDTH - _LABEL_WIDTH - 70
    rows = [
        _bar_row(i, name, value, value / top * room, unit) for i, (name, value) in enumerate(bars)
    ]
    return _document(title, len(bars) * _BAR + 10, rows)


def _bar_row(index: int, name: str, value: float, length: float, unit: str) -> str:
    y = 5 + index * _BAR
    middle = y + _BAR / 2 + 4
    suffix = f" {_text(unit)}" if unit else ""
    return (
        f'<text x="{_LABEL_WIDTH - 6}" y="{middle:.0f}" text-anchor="end">'
        f"{_text(_label(name))}</text>"
        f'<rect x="{_LABEL_WIDTH}" y="{y + 3}" width="{max(length, 1):.1f}"'
        f' height="{_BAR - 6}" class="chart-bar" fill="{_ACCENT}"/>'
        f'<text x="{_LABEL_WIDTH + max(length, 1) + 6:.1f}" y="{middle:.0f}">'
        f"{_number(value)}{suffix}</text>"
    )


def line_chart(
    title: str,
    points: Sequence[tuple[str, float | None]],
    unit: str = "",
    top: float | None = None,
) -> Svg:
    """A line over (label, value) points, left to right; a ``None`` value leaves a gap
    (nothing to measure that week).  ``top`` fixes the scale (100 for percentages)."""
    values = [v for _, v in points if v is not None]
    if not values:
        return _nothing(title)
    scale = top or max(values) or 1.0
    step = (_WIDTH - 2 * _MARGIN) / max(len(points) - 1, 1)
    place = [
        (_MARGIN + i * step, None if v is None else _MARGIN / 2 + _PLOT_HEIGHT * (1 - v / scale))
        for i, (_, v) in enumerate(points)
    ]
    body = [_axes(scale, unit), *_lines(place), *_dots(points, place, unit)]
    body += _x_labels([label for label, _ in points], [x for x, _ in place])
    return _document(title, _PLOT_HEIGHT + _MARGIN + 20, body)


def _axes(scale: float, unit: str) -> str:
    bottom = _MARGIN / 2 + _PLOT_HEIGHT
    suffix = f" {_text(unit)}" if unit else ""
    return (
        f'<line x1="{_MARGIN}" y1="{bottom}" x2="{_WIDTH - _MARGIN}" y2="{bottom}"'
        f' class="chart-axis" stroke="{_MUTED}"/>'
        f'<text x="2" y="{_MARGIN / 2 + 4}">{_number(scale)}{suffix}</text>'
        f'<text x="2" y="{bottom + 4}">0</text>'
    )


def _lines(place: Sequence[tuple[float, float | None]]) -> list[str]:
    """One polyline per run of points without a gap."""
    runs: list[list[str]] = [[]]
    for x, y in place:
        if y is None:
            runs.append([])
        else:
            runs[-1].append(f"{x:.1f},{y:.1f}")
    return [
        f'<polyline points="{" ".join(run)}" class="chart-line" fill="none"'
        f' stroke="{_ACCENT}" stroke-width="2"/>'
        for run in runs
        if len(run) > 1
    ]


def _dots(
    points: Sequence[tuple[str, float | None]],
    place: Sequence[tuple[float, float | None]],
    unit: str,
) -> list[str]:
    suffix = f" {unit}" if unit else ""
    return [
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="chart-dot" fill="{_ACCENT}">'
        f"<title>{_text(f'{label}: {_number(value)}{suffix}')}</title></circle>"
        for (label, value), (x, y) in zip(points, place, strict=True)
        if value is not None and y is not None
    ]


def _x_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    """At most eight labels under the axis, evenly spread back from the last one."""
    every = max(1, -(-len(labels) // 8))
    shown = [i for i in range(len(labels)) if (len(labels) - 1 - i) % every == 0]
    y = _MARGIN / 2 + _PLOT_HEIGHT + 18
    return [
        f'<text x="{xs[i]:.1f}" y="{y:.0f}" text-anchor="middle">{_text(labels[i])}</text>'
        for i in shown
    ]
