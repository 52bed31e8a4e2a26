"""``bin/loadtest compare A.json B.json``: what changed from run A to run B, per endpoint and
phase, and which changes are beyond run-to-run noise. Pure: two report dicts in, a
``Comparison`` out; ``offline`` reads the files and prints.

Noise, per metric (each a two-sided test at ``z``, default 3):

- **Latency percentiles** (p50, p99, p99.9): a distribution-free confidence interval from
  order statistics. Among n latencies, the rank of the true p-th percentile is binomial
  (n, p): the interval runs from the value at rank n*p - z*sqrt(n*p*(1-p)) to the value at
  rank n*p + z*sqrt(n*p*(1-p)) (clamped to 1..n), both read off the run's HDR histogram.
  A change is flagged when A's and B's intervals do not overlap.
- **Error and degraded rates** (shares of scheduled requests): a two-proportion z-test
  with the pooled share.
- **Throughput** (responses per second): the responses as Poisson counts over each
  phase's seconds, z = (r_B - r_A) / sqrt(n_A / t_A^2 + n_B / t_B^2).

These treat requests as independent samples; a machine's state drifts between runs (CPU
contention, caches, GC), which sampling noise does not cover, so a change must also be at
least ``min_change`` (relative, default 10%) for a latency or throughput to be flagged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.loadtest.histogram import LatencyHistogram

__all__ = [
    "Change",
    "Comparison",
    "compare_reports",
    "percentile_interval",
    "poisson_rate_z",
    "render_comparison",
    "two_proportion_z",
]

DEFAULT_Z = 3.0
DEFAULT_MIN_CHANGE = 0.10
WHOLE_RUN = "whole run"
#: Compared metrics: name, kind, which direction is worse.
_LATENCIES = (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9))
_RATES = ("errors", "degraded")
METRICS = ("req/s", *(name for name, _ in _LATENCIES), *_RATES)


def percentile_interval(
    histogram: LatencyHistogram, percentile: float, z: float = DEFAULT_Z
) -> tuple[float, float]:
    """The ``percentile``'s (0-100) confidence interval in ms: the values at the binomial
    rank bounds n*p -/+ z*sqrt(n*p*(1-p)). A bound beyond the ranks the run has (below 1,
    above n) leaves that side open (0 or infinity): too few samples to bound the percentile
    there, e.g. a p99.9 from fewer than a few thousand requests. (0, inf) when empty."""
    n = histogram.count
    if not n:
        return (0.0, math.inf)
    share = percentile / 100.0
    centre, spread = n * share, z * math.sqrt(n * share * (1.0 - share))
    low_rank, high_rank = math.floor(centre - spread), math.ceil(centre + spread)
    low = histogram.value_at_rank_ms(low_rank) if low_rank >= 1 else 0.0
    high = histogram.value_at_rank_ms(high_rank) if high_rank <= n else math.inf
    return (low, high)


def two_proportion_z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """z of share B minus share A (pooled standard error); 0.0 when it cannot differ
    (no requests, or a pooled share of 0 or 1)."""
    if not n_a or not n_b:
        return 0.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    error = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    return (hits_b / n_b - hits_a / n_a) / error if error > 0 else 0.0


def poisson_rate_z(count_a: int, seconds_a: float, count_b: int, seconds_b: float) -> float:
    """z of rate B minus rate A for Poisson counts over their durations; 0.0 without data."""
    if seconds_a <= 0 or seconds_b <= 0 or count_a + count_b == 0:
        return 0.0
    error = math.sqrt(count_a / seconds_a**2 + count_b / seconds_b**2)
    return (count_b / seconds_b - count_a / seconds_a) / error


@dataclass(frozen=True, slots=True)
class Change:
    """One metric of one endpoint in one phase, A against B.

    ``a`` and ``b`` are ms (latency), req/s or a 0-1 share; ``a_ci``/``b_ci`` the
    percentile intervals; ``z`` the test statistic of rates; ``verdict`` is ``worse`` or
    ``better`` when beyond noise (and ``min_change``), else ``same``, or ``n/a`` when a run
    has no sample for it."""

    endpoint: str
    phase: str
    metric: str
    a: float | None
    b: float | None
    verdict: str
    a_ci: tuple[float, float] | None = None
    b_ci: tuple[float, float] | None = None
    z: float | None = None

    @property
    def relative(self) -> float | None:
        """B / A - 1, or None when A is 0 or missing."""
        if self.a is None or self.b is None or self.a == 0:
            return None
        return self.b / self.a - 1.0


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every change, row by row (endpoint, phase), and what the two runs did not share."""

    changes: tuple[Change, ...]
    counts: Mapping[tuple[str, str], tuple[int, int]]
    z: float
    min_change: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def regressions(self) -> tuple[Change, ...]:
        """The changes for the worse beyond noise."""
        return tuple(change for change in self.changes if change.verdict == "worse")

    @property
    def improvements(self) -> tuple[Change, ...]:
        """The changes for the better beyond noise."""
        return tuple(change for change in self.changes if change.verdict == "better")


def compare_reports(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    z: float = DEFAULT_Z,
    min_change: float = DEFAULT_MIN_CHANGE,
) -> Comparison:
    """Compare every endpoint (and ``all``) both runs have, over the whole run and each
    phase both have (by name)."""
    changes: list[Change] = []
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for endpoint, block_a, block_b in _blocks(a, b):
        for phase, cell_a, cell_b, seconds in _cells(a, b, block_a, block_b):
            counts[(endpoint, phase)] = (cell_a["count"], cell_b["count"])
            changes.extend(_compare_cells(endpoint, phase, cell_a, cell_b, seconds, z, min_change))
    return Comparison(tuple(changes), counts, z, min_change, tuple(_notes(a, b)))


def _blocks(a: Mapping[str, Any], b: Mapping[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    for name, block in a["endpoints"].items():
        if name in b["endpoints"]:
            yield name, block, b["endpoints"][name]
    yield "all", a["all"], b["all"]


def _measured_s(report: Mapping[str, Any], phase: Mapping[str, Any] | None) -> float:
    run = report["run"]
    if phase is None:
        return max(0.0, float(run["ended_s"]) - float(run["warmup_s"]))
    end = min(float(phase["end_s"]), float(run["ended_s"]))
    return max(0.0, end - float(phase["start_s"]))


def _cells(
    a: Mapping[str, Any], b: Mapping[str, Any], block_a: Any, block_b: Any
) -> Iterator[tuple[str, Any, Any, tuple[float, float]]]:
    yield (
        WHOLE_RUN,
        block_a["total"],
        block_b["total"],
        (_measured_s(a, None), _measured_s(b, None)),
    )
    if len(a["phases"]) < 2 or len(b["phases"]) < 2:  # noqa: PLR2004 - one phase is the whole run
        return
    phases_b = {phase["name"]: phase for phase in b["phases"]}
    for phase in a["phases"]:
        other = phases_b.get(phase["name"])
        if other is not None:
            seconds = (_measured_s(a, phase), _measured_s(b, other))
            yield (
                phase["name"],
                block_a["phases"][phase["name"]],
                block_b["phases"][phase["name"]],
                seconds,
            )


def _compare_cells(
    endpoint: str,
    phase: str,
    cell_a: Mapping[str, Any],
    cell_b: Mapping[str, Any],
    seconds: tuple[float, float],
    z: float,
    min_change: float,
) -> list[Change]:
    changes = [_throughput(endpoint, phase, cell_a, cell_b, seconds, z, min_change)]
    histogram_a = LatencyHistogram.decode(cell_a["histogram"])
    histogram_b = LatencyHistogram.decode(cell_b["histogram"])
    for name, percentile in _LATENCIES:
        if not histogram_a.count or not histogram_b.count:
            changes.append(Change(endpoint, phase, name, None, None, "n/a"))
            continue
        value_a = histogram_a.percentile_ms(percentile)
        value_b = histogram_b.percentile_ms(percentile)
        ci_a = percentile_interval(histogram_a, percentile, z)
        ci_b = percentile_interval(histogram_b, percentile, z)
        apart = ci_b[0] > ci_a[1] or ci_a[0] > ci_b[1]
        big = value_a > 0 and abs(value_b / value_a - 1.0) >= min_change
        verdict = ("worse" if value_b > value_a else "better") if apart and big else "same"
        changes.append(Change(endpoint, phase, name, value_a, value_b, verdict, ci_a, ci_b))
    for name in _RATES:
        hits_a, n_a = _hits(cell_a, name), cell_a["count"]
        hits_b, n_b = _hits(cell_b, name), cell_b["count"]
        if not n_a or not n_b:
            changes.append(Change(endpoint, phase, name, None, None, "n/a"))
            continue
        score = two_proportion_z(hits_a, n_a, hits_b, n_b)
        verdict = ("worse" if score > 0 else "better") if abs(score) > z else "same"
        changes.append(
            Change(endpoint, phase, name, hits_a / n_a, hits_b / n_b, verdict, z=round(score, 2))
        )
    return changes


def _throughput(
    endpoint: str,
    phase: str,
    cell_a: Mapping[str, Any],
    cell_b: Mapping[str, Any],
    seconds: tuple[float, float],
    z: float,
    min_change: float,
) -> Change:
    (seconds_a, seconds_b), n_a, n_b = seconds, cell_a["responses"], cell_b["responses"]
    if seconds_a <= 0 or seconds_b <= 0:
        return Change(endpoint, phase, "req/s", None, None, "n/a")
    rate_a, rate_b = n_a / seconds_a, n_b / seconds_b
    score = poisson_rate_z(n_a, seconds_a, n_b, seconds_b)
    big = rate_a > 0 and abs(rate_b / rate_a - 1.0) >= min_change
    verdict = ("worse" if score < 0 else "better") if abs(score) > z and big else "same"
    return Change(endpoint, phase, "req/s", rate_a, rate_b, verdict, z=round(score, 2))


def _hits(cell: Mapping[str, Any], metric: str) -> int:
    """Errors (5xx, other statuses, no response) or degraded answers, as thresholds count."""
    if metric == "degraded":
        return int(cell["degraded"])
    status = cell["status"]
    return int(status.get("5xx", 0) + status.get("other", 0) + sum(cell["failures"].values()))


def _notes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    notes = [
        f"the runs differ in {key}: {a['run'].get(key)!r} -> {b['run'].get(key)!r}"
        for key in ("scenario", "load", "mode", "target")
        if a["run"].get(key) != b["run"].get(key)
    ]
    only_a = sorted(set(a["endpoints"]) - set(b["endpoints"]))
    only_b = sorted(set(b["endpoints"]) - set(a["endpoints"]))
    if only_a or only_b:
        notes.append(
            f"endpoints only in A: {', '.join(only_a) or '-'}; only in B: "
            f"{', '.join(only_b) or '-'}"
        )
    names_a = [p["name"] for p in a["phases"]]
    names_b = [p["name"] for p in b["phases"]]
    if names_a != names_b:
        notes.append(
            f"phases differ (compared by name where both have one): A {names_a}, B {names_b}"
        )
    for label, report in (("A", a), ("B", b)):
        generator = report["generator"]
        if generator["send_lag_ms"]["p99"] > 10.0 or generator["not_sent"]:  # noqa: PLR2004
            notes.append(f"run {label}'s generator fell behind: its latencies include its own lag")
    return notes


# -- text ---------------------------------------------------------------------------------

_MARK = {"worse": "!", "better": "+", "same": "", "n/a": ""}


def _cell_text(change: Change) -> str:
    if change.a is None or change.b is None:
        return "-"
    if change.metric in _RATES:
        text = f"{change.a * 100:.2f}->{change.b * 100:.2f}%"
    elif change.relative is None:
        text = f"{change.a:g}>{change.b:g}"
    else:
        text = f"{change.relative * 100:+.1f}%"
    return text + _MARK[change.verdict]


def render_comparison(comparison: Comparison, label_a: str = "A", label_b: str = "B") -> str:
    """A table, one row per endpoint and phase (latency and req/s as B's relative change,
    rates as A->B percentages; ``!`` worse beyond noise, ``+`` better), then every flagged
    change with its intervals, then a verdict line."""
    rows: dict[tuple[str, str], dict[str, Change]] = {}
    for change in comparison.changes:
        rows.setdefault((change.endpoint, change.phase), {})[change.metric] = change
    width_e = max(8, *(len(endpoint) for endpoint, _ in rows))
    width_p = max(9, *(len(phase) for _, phase in rows))
    widths = {"req/s": 8, "p50": 8, "p99": 8, "p99.9": 8, "errors": 14, "degraded": 14}
    lines = [
        f"A = {label_a}",
        f"B = {label_b}",
        (
            f"change from A to B; '!' worse beyond noise, '+' better (z = {comparison.z:g}; "
            f"latency and req/s also by >= {comparison.min_change * 100:g}%)"
        ),
        f"{'endpoint':<{width_e}} {'phase':<{width_p}} {'count A/B':>11}"
        + "".join(f" {metric:>{widths[metric]}}" for metric in METRICS),
    ]
    for (endpoint, phase), metrics in rows.items():
        count_a, count_b = comparison.counts[(endpoint, phase)]
        lines.append(
            f"{endpoint:<{width_e}} {phase:<{width_p}} {f'{count_a}/{count_b}':>11}"
            + "".join(f" {_cell_text(metrics[m]):>{widths[m]}}" for m in METRICS if m in metrics)
        )
    flagged = [c for c in comparison.changes if c.verdict in {"worse", "better"}]
    if flagged:
        lines.append("")
    lines.extend(
        f"{change.verdict.upper():<6} {change.endpoint} {change.phase} {change.metric}: "
        + _detail(change)
        for change in flagged
    )
    lines.extend(f"note: {note}" for note in comparison.notes)
    regressions = len(comparison.regressions)
    lines.append(
        f"compare: {regressions} regression(s), {len(comparison.improvements)} improvement(s) "
        "beyond noise"
        if flagged
        else "compare: no change beyond noise"
    )
    return "\n".join(lines)


def _detail(change: Change) -> str:
    if change.a_ci is not None and change.b_ci is not None:
        return (
            f"{change.a:.1f} ms [{change.a_ci[0]:.1f}-{change.a_ci[1]:.1f}] -> "
            f"{change.b:.1f} ms [{change.b_ci[0]:.1f}-{change.b_ci[1]:.1f}]"
        )
    if change.a is None or change.b is None:
        return "-"
    if change.metric in _RATES:
        return f"{change.a * 100:.2f}% -> {change.b * 100:.2f}% (z = {change.z:+.1f})"
    return f"{change.a:.1f} -> {change.b:.1f} req/s (z = {change.z:+.1f})"
