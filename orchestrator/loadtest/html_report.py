"""``--html FILE`` and ``bin/loadtest report RUN.json --html FILE``: one self-contained page.

Rendered from the report dict alone (what ``--json`` writes), so a saved run renders again
later. Inline CSS and inline SVG drawn by ``svg``: no script, no font or stylesheet from
anywhere, so the file opens offline and attaches to a release ticket as it is.

The page: the run's summary and verdict, the thresholds (PASS/FAIL with measured values),
the whole-run table per endpoint, the percentile distribution of every endpoint (from the
HDR histograms), then per endpoint (and all together) latency p50/p99 per second and what
became of each second's requests (2xx, degraded, 4xx, 5xx, no response, unsent) with the
warmup and fault windows shaded, and its per-phase table; the text report closes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from orchestrator.loadtest.histogram import PERCENTILES, LatencyHistogram
from orchestrator.loadtest.phase import describe_fault
from orchestrator.loadtest.report import render_tables
from orchestrator.loadtest.svg import Band, Bars, Line, line_chart, percentile_chart, stacked_bars
from orchestrator.loadtest.threshold import shown

__all__ = ["render_html", "write_html"]

_FAULT_COLOURS = ("#e9c46a", "#b39ddb", "#f4a261", "#80cbc4", "#c5b358")
_WARMUP_COLOUR = "#c8c8c8"
_ENDPOINT_COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)
#: What became of a second's requests, bottom-up: label, colour.
_OUTCOMES = (
    ("2xx", "#2e7d32"),
    ("2xx degraded", "#f9a825"),
    ("3xx/4xx", "#1565c0"),
    ("5xx", "#c62828"),
    ("no response", "#212121"),
    ("unsent", "#9e9e9e"),
)
_COLUMNS = ("count", "req/s", "2xx", "4xx", "5xx", "fail", "unsent", "degr")

_CSS = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 20px 28px; color: #1a1a1a; background: #fff; max-width: 1300px; }
h1 { font-size: 21px; margin: 0 0 6px; } h2 { font-size: 17px; margin: 24px 0 8px;
  border-bottom: 1px solid #ddd; padding-bottom: 3px; } h3 { font-size: 15px; margin: 14px 0 6px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff;
           font-weight: 600; margin-left: 8px; font-size: 15px; }
.verdict.pass, td.pass { background: #2e7d32; } .verdict.fail, td.fail { background: #c62828; }
td.pass, td.fail { color: #fff; font-weight: 600; text-align: center; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 8px 0; }
dl.summary dt { color: #555; } dl.summary dd { margin: 0; }
table { border-collapse: collapse; margin: 4px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 3px 8px; } th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; } tr.invalid td { background: #fdecea; }
.charts { display: flex; flex-wrap: wrap; gap: 8px 16px; }
svg.chart { background: #fff; border: 1px solid #e4e4e4; }
svg .title { font: 600 13px system-ui, sans-serif; } svg .tick { font: 10px system-ui, sans-serif;
  fill: #444; } svg .axis, svg .legend { font: 11px system-ui, sans-serif; fill: #333; }
svg .frame { fill: none; stroke: #999; } svg .grid { stroke: #ececec; }
svg .band { opacity: 0.35; } svg .band.warmup { opacity: 0.45; }
.note { color: #555; } .warning { color: #b71c1c; font-weight: 600; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 12px; }
"""


def write_html(report: Mapping[str, Any], path: str) -> None:
    """Write ``render_html(report)`` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as file:  # noqa: PTH123 - plain file
        file.write(render_html(report))


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page as one string."""
    run = report["run"]
    title = f"{run['scenario'] or 'ad-hoc run'}: {run['load']}"
    body = [
        *_heading(report, title),
        *_thresholds(report.get("thresholds") or ()),
        "<h2>Endpoints, whole run</h2>",
        _table(
            "endpoint",
            [(name, data["total"]) for name, data in report["endpoints"].items()]
            + [("all", report["all"]["total"])],
        ),
        *_distribution(report),
        *_over_time(report),
        "<h2>Text report</h2>",
        (
            "<details><summary>what bin/loadtest printed (failures, first error bodies, "
            f"generator)</summary><pre>{escape(render_tables(report))}</pre></details>"
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # An empty icon: otherwise a browser asks for /favicon.ico (a 404 when served).
        '<link rel="icon" href="data:,">'
        f"<title>bin/loadtest: {escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _heading(report: Mapping[str, Any], title: str) -> list[str]:
    run, generator = report["run"], report["generator"]
    verdict = report.get("verdict")
    badge = ""
    if verdict is not None:
        word = "PASS" if verdict["passed"] else f"FAIL (exit {verdict['exit_code']})"
        badge = f'<span class="verdict {"pass" if verdict["passed"] else "fail"}">{word}</span>'
    measured = max(0.0, run["ended_s"] - run["warmup_s"])
    state = " (partial: interrupted)" if run["partial"] else ""
    if run.get("aborted"):
        state = f" (ABORTED: {run['aborted']})"
    lag = generator["send_lag_ms"]
    # Closed loop has no schedule to be late against: latency counts from the actual send.
    origin = "scheduled send time" if run["mode"] == "open" else "actual send (closed loop)"
    rows = [
        ("target", _against(run)),
        ("load", f"{run['load']} ({run['mode']} loop), mix " + _mix(run.get("mix") or {})),
        ("measured", f"{measured:.1f} s after {run['warmup_s']:g} s warmup{state}"),
        ("started", f"{run.get('started_at', '')}, seed {run.get('seed')}"),
        (
            "generator",
            (
                f"send lag p50 {lag['p50']:.2f} ms, p99 {lag['p99']:.2f} ms, "
                f"max {lag['max']:.1f} ms; CPU {generator['cpu_share'] * 100:.0f}% of one core; "
                f"unsent {generator['not_sent']}; "
                f"warmup requests excluded {generator['warmup_requests']}"
            ),
        ),
    ]
    rows += [("fault", _fault_line(fault)) for fault in report.get("faults") or ()]
    lines = [
        f"<h1>{escape(title)}{badge}</h1>",
        '<dl class="summary">',
        *(f"<dt>{escape(key)}</dt><dd>{escape(value)}</dd>" for key, value in rows),
        "</dl>",
        (
            f'<p class="note">Latency in ms from the {origin}, every sent request included; '
            "requests count in the phase and second they were scheduled in.</p>"
        ),
    ]
    if lag["p99"] > 10.0 or generator["not_sent"]:  # noqa: PLR2004 - report.LAG_WARNING_MS
        lines.append(
            '<p class="warning">The generator fell behind its schedule: latencies include its '
            "own lateness and the offered load was lower than planned.</p>"
        )
    return lines


def _against(run: Mapping[str, Any]) -> str:
    routes = run.get("routes") or {}
    if not routes:
        return str(run["target"])
    return "; ".join(f"{family} -> {url}" for family, url in routes.items())


def _mix(mix: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={weight:g}" for name, weight in mix.items()) or "-"


def _fault_line(fault: Mapping[str, Any]) -> str:
    service, change = fault["service"], fault["fault"]
    what = (
        f"heal {service or 'all'}" if change is None else describe_fault(service or "all", change)
    )
    when = "NOT APPLIED" if fault["applied_s"] is None else f"applied at {fault['applied_s']:.3f} s"
    error = f" ({fault['error']})" if fault.get("error") else ""
    return f"at {fault['at_s']:g} s: {what}; {when}{error}"


def _thresholds(results: Sequence[Mapping[str, Any]]) -> list[str]:
    if not results:
        return []
    failed = sum(not result["passed"] for result in results)
    lines = [
        "<h2>Thresholds</h2>",
        f"<p>{len(results) - failed} passed, {failed} failed</p>",
        (
            '<table class="thresholds"><tr><th>verdict</th><th>threshold</th><th>measured</th>'
            "<th>n</th><th>phases</th><th>source</th><th>note</th></tr>"
        ),
    ]
    for result in results:
        verdict = "PASS" if result["passed"] else "FAIL"
        phases = ", ".join(result.get("phases") or ()) or "whole run"
        lines.append(
            f'<tr><td class="{verdict.lower()}">{verdict}</td>'
            f"<td><code>{escape(result['expression'])}</code></td>"
            f'<td class="num">{escape(shown(result))}</td><td class="num">{result["count"]}</td>'
            f"<td>{escape(phases)}</td><td>{escape(str(result.get('source', '')))}</td>"
            f"<td>{escape(result.get('reason') or '')}</td></tr>"
        )
    lines.append("</table>")
    return lines


def _table(
    first: str, rows: Sequence[tuple[str, Mapping[str, Any]]], invalid: Sequence[str] = ()
) -> str:
    names = [name for name, _ in PERCENTILES] + ["max"]
    head = "".join(f"<th>{escape(c)}</th>" for c in (first, *_COLUMNS, *names))
    lines = [f"<table><tr>{head}</tr>"]
    for label, cell in rows:
        status, latency = cell["status"], cell["latency_ms"]
        values = (
            cell["count"],
            f"{cell['rate']:.1f}",
            status.get("2xx", 0),
            status.get("3xx", 0) + status.get("4xx", 0),
            status.get("5xx", 0) + status.get("other", 0),
            sum(cell["failures"].values()),
            cell["not_sent"],
            cell["degraded"],
            *(f"{latency[name]:.1f}" for name in names),
        )
        row_class = ' class="invalid"' if label in invalid else ""
        cells = "".join(f'<td class="num">{value}</td>' for value in values)
        lines.append(f"<tr{row_class}><td>{escape(label)}</td>{cells}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _distribution(report: Mapping[str, Any]) -> list[str]:
    """Every endpoint's percentile curve (and all together, dashed) from its histogram."""
    blocks = [*report["endpoints"].items(), ("all", report["all"])]
    curves, counts = [], []
    for index, (name, data) in enumerate(blocks):
        histogram = LatencyHistogram.decode(data["total"]["histogram"])
        if not histogram.count:
            continue
        colour = "#000000" if name == "all" else _ENDPOINT_COLOURS[index % len(_ENDPOINT_COLOURS)]
        points: list[tuple[float, float | None]] = [(0.0, histogram.value_at_rank_ms(1))]
        points += histogram.percentile_curve_ms()
        curves.append(
            Line(
                name, colour, points, 1.0 if name == "all" else 1.6, "5 3" if name == "all" else ""
            )
        )
        counts.append(histogram.count)
    if not curves:
        return []
    return [
        "<h2>Latency percentile distribution, whole run</h2>",
        (
            '<p class="note">From each endpoint\'s HDR histogram: x is 1 / (1 - percentile) on a '
            "log scale, so each nine gets the same width (HdrHistogram's plot).</p>"
        ),
        f'<div class="charts">{percentile_chart("latency by percentile", curves, counts)}</div>',
    ]


def _bands(report: Mapping[str, Any]) -> list[Band]:
    run = report["run"]
    bands = []
    if run["warmup_s"] > 0:
        bands.append(Band(0.0, float(run["warmup_s"]), "warmup", _WARMUP_COLOUR, "warmup"))
    colour_of: dict[tuple[str, ...], str] = {}
    for phase in report["phases"]:
        if not phase["faults"]:
            continue
        key = tuple(phase["faults"])
        colour = colour_of.setdefault(key, _FAULT_COLOURS[len(colour_of) % len(_FAULT_COLOURS)])
        end = min(float(phase["end_s"]), float(run["ended_s"]))
        bands.append(Band(float(phase["start_s"]), end, phase["name"], colour, "fault"))
    return bands


def _over_time(report: Mapping[str, Any]) -> list[str]:
    run = report["run"]
    x_range = (0.0, float(max(1, math.ceil(run["ended_s"]))))
    bands = _bands(report)
    series = report.get("endpoint_series")
    lines = ["<h2>Per second, and per phase</h2>"]
    if series is None:
        lines.append(
            '<p class="note">This report has no per-endpoint series (it was written by an '
            "older bin/loadtest): only the phase tables are shown per endpoint.</p>"
        )
        series = {}
    invalid = [p["name"] for p in report["phases"] if p.get("invalid")]
    blocks = [*report["endpoints"].items(), ("all", report["all"])]
    for name, data in blocks:
        lines.append(f'<h3 id="endpoint-{escape(name)}">{escape(name)}</h3>')
        points = _all_points(report, series) if name == "all" else series.get(name, [])
        if points:
            lines.append('<div class="charts">')
            lines.append(_latency_chart(name, points, x_range, bands))
            lines.append(_outcome_chart(name, points, x_range, bands))
            lines.append("</div>")
        phases = report["phases"]
        if len(phases) > 1:
            rows = [
                (f"{p['name']} [{p['start_s']:g}-{p['end_s']:g} s)", data["phases"][p["name"]])
                for p in phases
            ]
            labels = [label for label, _ in rows if label.split(" [")[0] in invalid]
            lines.append(_table("phase", rows, labels))
    return lines


def _all_points(report: Mapping[str, Any], series: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every endpoint's seconds added up; latency from the run-wide series (also by
    scheduled second)."""
    if not series:
        return []
    latency = {point["t"]: point["latency_ms"] for point in report.get("series", ())}
    summed: dict[int, dict[str, Any]] = {}
    for points in series.values():
        for point in points:
            into = summed.setdefault(
                point["t"],
                {
                    "t": point["t"],
                    "scheduled": 0,
                    "status": {},
                    "failed": 0,
                    "not_sent": 0,
                    "degraded": 0,
                    "latency_ms": latency.get(point["t"]),
                },
            )
            for key in ("scheduled", "failed", "not_sent", "degraded"):
                into[key] += point[key]
            for key, count in point["status"].items():
                into["status"][key] = into["status"].get(key, 0) + count
    return [summed[t] for t in sorted(summed)]


def _latency_chart(
    name: str,
    points: Sequence[Mapping[str, Any]],
    x_range: tuple[float, float],
    bands: Sequence[Band],
) -> str:
    def line(metric: str) -> list[tuple[float, float | None]]:
        return [
            (
                point["t"] + 0.5,
                point["latency_ms"][metric]
                if point["latency_ms"] and point["scheduled"] > point["not_sent"]
                else None,
            )
            for point in points
        ]

    return line_chart(
        f"{name}: latency per second (log)",
        [Line("p99", "#6a1b9a", line("p99"), 2.2), Line("p50", "#1f77b4", line("p50"), 1.5)],
        x_range=x_range,
        bands=bands,
        y_label="ms (from scheduled send)",
    )


def _outcome_chart(
    name: str,
    points: Sequence[Mapping[str, Any]],
    x_range: tuple[float, float],
    bands: Sequence[Band],
) -> str:
    def count(point: Mapping[str, Any], outcome: str) -> float:
        status = point["status"]
        return float(
            {
                "2xx": status.get("2xx", 0) - point["degraded"],
                "2xx degraded": point["degraded"],
                "3xx/4xx": status.get("3xx", 0) + status.get("4xx", 0),
                "5xx": status.get("5xx", 0) + status.get("other", 0),
                "no response": point["failed"],
                "unsent": point["not_sent"],
            }[outcome]
        )

    layers = [
        Bars(label, colour, [(float(p["t"]), count(p, label)) for p in points])
        for label, colour in _OUTCOMES
    ]
    return stacked_bars(f"{name}: outcomes per second", layers, x_range=x_range, bands=bands)
