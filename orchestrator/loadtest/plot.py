"""``--plot FILE.png``: latency percentiles and throughput per second, fault windows shaded.

Drawn from the report dict alone (so a saved ``--json`` report can be plotted again).
matplotlib is imported lazily with the non-interactive Agg backend: runs without
``--plot`` never pay for it, and no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["plot_report"]

_FAULT_COLOURS = ("#f4a261", "#e76f51", "#e9c46a", "#2a9d8f", "#8ab17d")


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
    for name, style in (("p50", "-"), ("p90", "-"), ("p99", "-"), ("max", ":")):
        values = [
            point["latency_ms"][name] if point["scheduled"] > point["not_sent"] else nan
            for point in series
        ]
        latency_ax.plot(seconds, values, style, label=name, linewidth=1.4)
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel("latency (ms, from scheduled send)")
    latency_ax.grid(visible=True, which="both", alpha=0.3)
    rate_ax.plot(seconds, [p["completed"] for p in series], label="responses/s", linewidth=1.4)
    rate_ax.plot(seconds, [p["scheduled"] for p in series], "--", label="scheduled/s", linewidth=1)
    rate_ax.plot(seconds, [p["errors_5xx"] for p in series], label="5xx/s", linewidth=1.2)
    rate_ax.plot(
        seconds,
        [p["failed"] + p["not_sent"] for p in series],
        label="failed+unsent/s",
        linewidth=1.2,
    )
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
    latency_ax.legend(loc="upper left", fontsize="small", ncols=3)
    rate_ax.legend(loc="upper left", fontsize="small", ncols=3)
    latency_ax.set_title(
        f"{run['scenario'] or 'ad-hoc run'}: {run['load']} against {run['target']}"
        + (" (partial)" if run["partial"] else "")
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)
