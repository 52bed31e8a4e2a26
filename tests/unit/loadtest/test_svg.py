"""The inline SVG charts: gaps, shaded windows, stacked bars, the percentile axis."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from itertools import pairwise

import pytest

from orchestrator.loadtest.svg import (
    Band,
    Bars,
    Line,
    line_chart,
    percentile_chart,
    stacked_bars,
)

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg):
    return ET.fromstring(svg)  # noqa: S314 - the SVG the test itself just drew


def test_a_line_breaks_where_nothing_was_measured():
    """A None point splits the line in two polylines; a band is drawn behind the data."""
    line = Line("p99", "#000", [(0.5, 10.0), (1.5, 20.0), (2.5, None), (3.5, 30.0), (4.5, 5.0)])
    band = Band(1.0, 3.0, "licensing hang", "#e9c46a")
    root = _parse(line_chart("home", [line], x_range=(0.0, 5.0), bands=[band]))
    polylines = root.findall(f"{SVG}polyline")
    assert [len(p.get("points").split()) for p in polylines] == [2, 2]
    shaded = root.find(f"{SVG}rect[@class='band fault']")
    assert shaded.get("data-label") == "licensing hang"
    children = list(root)
    assert children.index(shaded) < children.index(polylines[0])


def test_log_latency_axis_spans_whole_decades():
    """5..30 ms on a log axis: ticks 5, 10, 20, 50 ... within 1..100."""
    line = Line("p50", "#000", [(0.5, 5.0), (1.5, 30.0)])
    ticks = re.findall(r'class="tick"[^>]*text-anchor="end"[^>]*>([^<]+)<', line_chart(
        "t", [line], x_range=(0.0, 2.0)))  # fmt: skip
    assert ticks == ["1", "2", "5", "10", "20", "50", "100"]


def test_bars_stack_their_layers():
    """At x=0: 8 ok and 2 errors are two rects, the red one on top of the green."""
    layers = [Bars("2xx", "#0a0", [(0.0, 8.0)]), Bars("5xx", "#c00", [(0.0, 2.0)]),
              Bars("unsent", "#999", [(0.0, 0.0)])]  # fmt: skip
    root = _parse(stacked_bars("home", layers, x_range=(0.0, 1.0)))
    green, red = root.findall(f"{SVG}rect[@class='bar']")
    assert float(red.get("y")) + float(red.get("height")) == float(green.get("y"))
    assert float(green.get("height")) == pytest.approx(4 * float(red.get("height")), abs=0.2)
    legend = [t.text for t in root.findall(f"{SVG}text[@class='legend']")]
    assert legend == ["2xx", "5xx"]  # a layer that is zero everywhere is not listed


def test_the_percentile_axis_gives_each_nine_the_same_width():
    """90%, 99% and 99.9% are evenly spaced; 100% is drawn at 1 / (2n), not at infinity."""
    curve = Line("home", "#000", [(0.0, 1.0), (90.0, 2.0), (99.0, 3.0), (99.9, 4.0), (100.0, 5.0)])
    root = _parse(percentile_chart("p", [curve], [1000]))
    xs = [float(pair.split(",")[0]) for pair in root.find(f"{SVG}polyline").get("points").split()]
    steps = [b - a for a, b in pairwise(xs)]
    assert steps[1] == pytest.approx(steps[0], abs=0.2)
    assert steps[2] == pytest.approx(steps[0], abs=0.2)
    assert 0 < steps[3] < steps[0]
