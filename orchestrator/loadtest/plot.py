"""``--plot FILE.png``: latency percentiles and throughput per second, fault windows shaded.

Drawn from the report dict alone (so a saved ``--json`` report can be plotted again).
matplotlib is imported lazily with the non-interactive Agg backend: runs without
``--plot`` never pay for it, and no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["plot_report"]

# Fault windows in yellows and purples: red stays the colour of errors.
_FAULT_COLOURS = ("#e9c46a", "#b39ddb", "#f4a261", "#80cbc4", "#c5b358")
#: Latency lines: name, colour, style, width (p99 boldest).
_LATENCY_LINES = (
    ("max", "#9e9e9e", ":", 1.0),
    ("p50", "#1f77b4", "-", 1.4),
    ("p90", "#2ca02c", "-", 1.4),
    ("p99", "#6a1b9a", "-", 2.0),
)
_Z = {"max": 2, "p50": 3, "p90": 4, "p99": 5}
#: Rate lines: label, series key(s), colour, style, width; errors red, failures black.
_RATE_LINES = (
    ("responses/s", "completed", "#1f77b4", "-", 1.4),
    ("scheduled/s", "scheduled", "#7f7f7f", "--", 1.0),
    ("5xx/s", "errors_5xx", "#d62728", "-", 1.4),
    ("failed+unsent/s", "failed+not_sent", "#000000", "-", 1.2),
)


def plot_report(report: Mapping[str, Any], path: str) -> None:
    """Write a PNG with two panels sharing the time axis: latency (log scale) and req/s."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    run = report["run"]
    # Completions after the schedule ended are the drain, not throughput: leave them out.
    series = [point for point in report["series"] if point["t"] < run["ended_s"]]
    seconds = [point["t"] + 0.5 for point in series]  # a bin's value belongs to its middle
    nan = float("nan")  # a gap in the line: no request was scheduled in that second
    figure, (latency_ax, rate_ax) = plt.subplots(
        2, 1, sharex=True, figsize=(12, 7.5), height_ratios=(3, 2), layout="constrained"
    )
    # max first, thin and grey, p99 last and thickest: p99 stays visible where it meets max.
    for name, colour, style, width in _LATENCY_LINES:
        values = [
            point["latency_ms"][name] if point["scheduled"] > point["not_sent"] else nan
            for point in series
        ]
        latency_ax.plot(
            seconds, values, style, color=colour, label=name, linewidth=width, zorder=_Z[name]
        )
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel("latency (ms, from scheduled send)")
    latency_ax.grid(visible=True, which="both", alpha=0.3)
    for label, keys, colour, style, width in _RATE_LINES:
        values = [sum(point[k] for k in keys.split("+")) for point in series]
        rate_ax.plot(seconds, values, style, color=colour, label=label, linewidth=width)
    rate_ax.set_ylabel("requests per second")
    rate_ax.set_xlabel("seconds since the run started")
    rate_ax.grid(visible=True, alpha=0.3)
    for axis in (latency_ax, rate_ax):
        if run["warmup_s"] > 0:
            axis.axvspan(0, run["warmup_s"], color="#bbbbbb", alpha=0.35, label="warmup")
        colour_of: dict[tuple[str, ...], str] = {}
        for phase in report["phases"]:
            if not phase["faults"]:
                continue
            key = tuple(phase["faults"])
            colour = colour_of.setdefault(key, _FAULT_COLOURS[len(colour_of) % len(_FAULT_COLOURS)])
            axis.axvspan(
                phase["start_s"], phase["end_s"], color=colour, alpha=0.25, label=phase["name"]
            )
        # Outside the axes, on the right: a legend inside would hide the first seconds.
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    latency_ax.set_title(
        f"{run['scenario'] or 'ad-hoc run'}: {run['load']} against {run['target']}"
        + (" (partial)" if run["partial"] else "")
        + _verdict(report)
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _verdict(report: Mapping[str, Any]) -> str:
    results = report.get("thresholds") or ()
    failed = sum(not result["passed"] for result in results)
    if not results:
        return ""
    return f" - thresholds: {failed} of {len(results)} FAILED" if failed else " - thresholds: pass"
