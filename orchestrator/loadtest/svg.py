"""Plain inline SVG charts drawn by Python for the HTML report: no JavaScript, no library, no
network, so the page renders the same offline, in any browser, years later.

Three kinds, all pure functions of their data returning an ``<svg>`` string: ``line_chart``
(latency over time, log or linear y), ``stacked_bars`` (outcomes per second) and
``percentile_chart`` (HdrHistogram's "percentile distribution": x is 1 / (1 - percentile)
on a log scale, so 90%, 99%, 99.9%... are evenly spaced and the tail gets the room).
``Band`` shades an x window (warmup, a fault) behind the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Band", "Bars", "Line", "line_chart", "percentile_chart", "stacked_bars"]

_WIDTH = 590
#: The percentile chart spans the page: its tail is what it is for.
_WIDE = 1200
_HEIGHT = 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 12, 26, 58
_TICKS = 6
#: The percentile axis' ticks: 0, 90, 99, 99.9, ... up to what the data reaches.
_NINES = ("0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%")


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded x window behind the data; ``kind`` becomes its CSS class (``fault``,
    ``warmup``), ``label`` its tooltip and legend entry."""

    start: float
    end: float
    label: str
    colour: str
    kind: str = "fault"


@dataclass(frozen=True, slots=True)
class Line:
    """A polyline; a ``None`` y is a gap (nothing was measured there)."""

    label: str
    colour: str
    points: Sequence[tuple[float, float | None]]
    width: float = 1.5
    dash: str = ""


@dataclass(frozen=True, slots=True)
class Bars:
    """One layer of a stacked bar chart: its value at each x (a bar of width 1 from x)."""

    label: str
    colour: str
    values: Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class _Frame:
    """Maps data to pixels inside the plot area."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    y_log: bool
    width: int = _WIDTH

    def x(self, value: float) -> float:
        span = self.x_max - self.x_min or 1.0
        return _LEFT + (value - self.x_min) / span * (self.width - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        low, high = self.y_min, self.y_max
        if self.y_log:
            low, high, value = math.log10(low), math.log10(high), math.log10(max(value, self.y_min))
        span = high - low or 1.0
        return _HEIGHT - _BOTTOM - (value - low) / span * (_HEIGHT - _TOP - _BOTTOM)


def _n(value: float) -> str:
    return f"{value:.1f}"


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.0e}"  # noqa: PLR2004 - readable width


def _nice_step(span: float) -> float:
    raw = span / _TICKS if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(float(step * power) for step in (1, 2, 2.5, 5, 10) if step * power >= raw)


def _linear_ticks(low: float, high: float) -> list[float]:
    step = _nice_step(high - low)
    first = math.ceil(low / step) * step
    count = int((high - first) / step + 1e-9) + 1
    return [round(first + i * step, 10) for i in range(count)]


def _log_ticks(low: float, high: float) -> list[float]:
    ticks = []
    for power in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**power
            if low <= value <= high:
                ticks.append(value)
    return ticks


def _open(title: str, kind: str, width: int = _WIDTH) -> list[str]:
    return [
        (
            f'<svg class="chart {kind}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{_HEIGHT}" viewBox="0 0 {width} {_HEIGHT}" role="img" '
            f'aria-label="{escape(title)}">'
        ),
        f'<text class="title" x="{_LEFT}" y="16">{escape(title)}</text>',
    ]


def _axes(
    frame: _Frame,
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[float],
    x_label: str,
    y_label: str,
) -> list[str]:
    left, right = _LEFT, frame.width - _RIGHT
    top, bottom = _TOP, _HEIGHT - _BOTTOM
    parts = [
        f'<rect class="frame" x="{left}" y="{top}" width="{right - left}" height="{bottom - top}"/>'
    ]
    for value in y_ticks:
        y = _n(frame.y(value))
        parts.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{y}" y2="{y}"/>')
        parts.append(
            f'<text class="tick" x="{left - 4}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{_label(value)}</text>'
        )
    for value, text in x_ticks:
        x = _n(frame.x(value))
        parts.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{top}" y2="{bottom}"/>')
        parts.append(
            f'<text class="tick" x="{x}" y="{bottom + 14}" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
    parts.append(
        f'<text class="axis" x="{(left + right) / 2}" y="{bottom + 30}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text class="axis" transform="translate(13 {(top + bottom) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return parts


def _bands(frame: _Frame, bands: Sequence[Band]) -> list[str]:
    parts = []
    for band in bands:
        start = max(band.start, frame.x_min)
        end = min(band.end, frame.x_max)
        if end <= start:
            continue
        x0, x1 = frame.x(start), frame.x(end)
        parts.append(
            f'<rect class="band {escape(band.kind)}" data-label="{escape(band.label)}" '
            f'x="{_n(x0)}" y="{_TOP}" width="{_n(x1 - x0)}" height="{_HEIGHT - _TOP - _BOTTOM}" '
            f'fill="{band.colour}"><title>{escape(band.label)}</title></rect>'
        )
    return parts


def _legend(entries: Sequence[tuple[str, str, str]]) -> list[str]:
    """Under the x-axis label, left to right: (label, colour, kind: line/box)."""
    parts = []
    x, y = float(_LEFT), _HEIGHT - 10
    for label, colour, kind in entries:
        if kind == "line":
            parts.append(
                f'<line x1="{x}" x2="{x + 14}" y1="{y - 4}" y2="{y - 4}" '
                f'stroke="{colour}" stroke-width="2.5"/>'
            )
        else:
            parts.append(f'<rect x="{x}" y="{y - 9}" width="12" height="10" fill="{colour}"/>')
        parts.append(f'<text class="legend" x="{x + 18}" y="{y}">{escape(label)}</text>')
        x += 28 + 6.6 * len(label)
    return parts


def _polylines(frame: _Frame, line: Line) -> list[str]:
    """One ``<polyline>`` per run of points without a gap."""
    runs: list[list[str]] = [[]]
    for x, y in line.points:
        if y is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{_n(frame.x(x))},{_n(frame.y(y))}")
    dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
    return [
        f'<polyline class="series" data-label="{escape(line.label)}" fill="none" '
        f'stroke="{line.colour}" stroke-width="{line.width}"{dash} points="{" ".join(run)}"/>'
        for run in runs
        if run
    ]


def _x_ticks(low: float, high: float) -> list[tuple[float, str]]:
    return [(value, _label(value)) for value in _linear_ticks(low, high)]


def line_chart(
    title: str,
    lines: Sequence[Line],
    *,
    x_range: tuple[float, float],
    bands: Sequence[Band] = (),
    y_log: bool = True,
    x_label: str = "seconds since the run started",
    y_label: str = "ms",
) -> str:
    """Lines over a shared x range (seconds), bands shaded behind them; log y by default
    (latency spans decades when a fault hits)."""
    values = [y for line in lines for _, y in line.points if y is not None and y > 0]
    if y_log:
        low = 10 ** math.floor(math.log10(min(values))) if values else 1.0
        high = 10 ** math.ceil(math.log10(max(values))) if values else 10.0
        high = max(high, low * 10)
        y_ticks = _log_ticks(low, high)
    else:
        low, high = 0.0, max(values, default=1.0) * 1.05
        y_ticks = _linear_ticks(low, high)
    frame = _Frame(x_range[0], x_range[1], low, high, y_log)
    parts = _open(title, "lines")
    parts += _bands(frame, bands)
    parts += _axes(frame, _x_ticks(*x_range), y_ticks, x_label, y_label)
    for line in lines:
        parts += _polylines(frame, line)
    legend = [(line.label, line.colour, "line") for line in lines]
    legend += [(band.label, band.colour, "box") for band in _unique(bands)]
    parts += _legend(legend)
    parts.append("</svg>")
    return "\n".join(parts)


def stacked_bars(
    title: str,
    layers: Sequence[Bars],
    *,
    x_range: tuple[float, float],
    bands: Sequence[Band] = (),
    y_label: str = "requests",
) -> str:
    """One bar per x (second), its layers stacked bottom-up in the given order; layers that
    are zero everywhere are left out of the legend."""
    totals: dict[float, float] = {}
    for layer in layers:
        for x, value in layer.values:
            totals[x] = totals.get(x, 0.0) + value
    high = max(totals.values(), default=1.0) * 1.05 or 1.0
    frame = _Frame(x_range[0], x_range[1], 0.0, high, y_log=False)
    parts = _open(title, "bars")
    parts += _bands(frame, bands)
    parts += _axes(
        frame,
        _x_ticks(*x_range),
        _linear_ticks(0.0, high),
        "seconds since the run started (requests by the second they were scheduled in)",
        y_label,
    )
    base: dict[float, float] = {}
    bar_width = max(frame.x(1.0) - frame.x(0.0) - 1.0, 0.5)
    for layer in layers:
        for x, value in layer.values:
            if value <= 0 or not x_range[0] <= x < x_range[1]:
                continue
            below = base.get(x, 0.0)
            top, bottom = frame.y(below + value), frame.y(below)
            parts.append(
                f'<rect class="bar" x="{_n(frame.x(x) + 0.5)}" y="{_n(top)}" '
                f'width="{_n(bar_width)}" height="{_n(bottom - top)}" fill="{layer.colour}">'
                f"<title>{escape(layer.label)} {value:g} at {x:g} s</title></rect>"
            )
            base[x] = below + value
    legend = [
        (layer.label, layer.colour, "box") for layer in layers if any(v for _, v in layer.values)
    ]
    legend += [(band.label, band.colour, "box") for band in _unique(bands)]
    parts += _legend(legend)
    parts.append("</svg>")
    return "\n".join(parts)


def percentile_chart(title: str, curves: Sequence[Line], counts: Sequence[int]) -> str:
    """Latency (linear ms) against percentile on HdrHistogram's log axis: a curve's points
    are (percentile 0-100, ms); ``counts`` (each curve's sample count) bound the axis, since
    the 100th percentile itself lies at infinity and is drawn at 1 / (2 * count)."""
    biggest = max(counts, default=1)
    nines = max(1, min(len(_NINES) - 1, math.ceil(math.log10(2 * max(biggest, 5)))))
    x_max = float(nines)
    plotted = []
    for curve, count in zip(curves, counts, strict=True):
        tail = 1.0 / (2 * max(count, 1))
        points: list[tuple[float, float | None]] = [
            (min(-math.log10(max(1.0 - p / 100.0, tail)), x_max), ms)
            for p, ms in curve.points
            if ms is not None
        ]
        plotted.append(Line(curve.label, curve.colour, points, curve.width, curve.dash))
    values = [y for line in plotted for _, y in line.points if y is not None]
    high = max(values, default=1.0) * 1.05 or 1.0
    frame = _Frame(0.0, x_max, 0.0, high, y_log=False, width=_WIDE)
    parts = _open(title, "percentiles", _WIDE)
    ticks = [(float(i), _NINES[i]) for i in range(nines + 1)]
    parts += _axes(frame, ticks, _linear_ticks(0.0, high), "percentile", "ms")
    for line in plotted:
        parts += _polylines(frame, line)
    parts += _legend([(line.label, line.colour, "line") for line in plotted])
    parts.append("</svg>")
    return "\n".join(parts)


def _unique(bands: Sequence[Band]) -> list[Band]:
    seen: dict[str, Band] = {}
    for band in bands:
        seen.setdefault(band.label, band)
    return list(seen.values())
