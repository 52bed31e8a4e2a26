"""One API, two, or an edge and a playback layer: what each topology costs.

Starts one ``bin/fake-backends serve`` (``realistic`` latency), then in turn:

- ``one``: one Frontdoor process serving every family (``FRONTDOOR_SERVER_TOPOLOGY=one``);
- ``two``: two Frontdoor processes, ``discovery`` (nonmember + discovery) and ``playback``,
  driven with ``bin/loadtest --target <discovery> --route playback=<playback>``;
- ``edge``: a playback layer (``playback``) and an edge (``edge``) in front of it that
  serves every family, calling the shared services itself and passing playback on: every
  request goes to the edge, and playback pays one more loopback hop.

Each gets the same open-loop rate of the default device mix through ``bin/loadtest``'s
engine (``--json``), after a warmup. The table gives per endpoint and overall p50/p99 (ms,
from the scheduled send time), the requests that were not 2xx, the Frontdoor processes'
CPU seconds per 1,000 requests (from /proc, over the whole run, warmup included) and their
resident memory at the end (VmRSS, summed over the topology's processes).

Frontdoor processes run on core 1 (both of them for ``two`` and ``edge``: the same CPU
budget), the
simulated services and the generator on core 0. Bounded: about 25 s per topology at the
defaults, 127.0.0.1 only.

    .venv/bin/python benchmarks/topology.py [--rate 100] [--duration 20] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _processes import (
    BACKENDS_MAIN,
    LOADTEST_MAIN,
    PYTHON,
    ROOT,
    cpu_s,
    free_port,
    rss_mb,
    spawn,
    stop,
    wait_listening,
)

FRONTDOOR = str(Path(PYTHON).with_name("frontdoor"))
ENDPOINTS = ("home", "search", "title", "play", "heartbeat", "signup")
#: Topology name -> the Frontdoor processes it runs (their FRONTDOOR_SERVER_TOPOLOGY).
#: The edge's playback layer starts first: the edge needs its URL.
TOPOLOGIES = {"one": ("one",), "two": ("discovery", "playback"), "edge": ("playback", "edge")}
LABELS = {"one": "one API", "two": "two APIs", "edge": "edge + layer"}


@dataclass(frozen=True, slots=True)
class Result:
    """One topology's run: the loadtest report and its Frontdoor processes' costs."""

    report: dict[str, Any]
    cpu_s: tuple[float, ...]
    rss_mb: tuple[float, ...]

    @property
    def sent(self) -> int:
        """Every request sent to Frontdoor during the run, warmup included."""
        total = self.report["all"]["total"]
        return int(total["sent"]) + int(self.report["generator"]["warmup_requests"])


def _run(name: str, backends_url: str, args: argparse.Namespace) -> Result:
    servers: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for topology in TOPOLOGIES[name]:
            port = free_port()
            env = dict(
                os.environ,
                FRONTDOOR_BACKENDS_BASE_URL=backends_url,
                FRONTDOOR_SERVER_TOPOLOGY=topology,
                FRONTDOOR_AUTH_DEMO="true",  # --no-embedded: the demo secrets only by opt-in
            )
            if topology == "edge":
                env["FRONTDOOR_SERVER_PLAYBACK_UPSTREAM"] = urls[0]
            servers.append(
                spawn([FRONTDOOR, "serve", "--no-embedded", "--port", str(port)], core=1, env=env)
            )
            urls.append(f"http://127.0.0.1:{port}")
            wait_listening(port)
        # two APIs: each family to its API; edge: everything to the edge, which passes
        # playback on to its layer.
        target = urls[-1] if name == "edge" else urls[0]
        routes = ["--route", f"playback={urls[1]}"] if name == "two" else []
        before = [cpu_s(server.pid) for server in servers]
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "report.json"
            subprocess.run(  # noqa: S603 - bin/loadtest's engine, same interpreter
                [
                    PYTHON, "-c", LOADTEST_MAIN, "--target", target, *routes,
                    "--rate", str(args.rate), "--duration", str(args.duration),
                    "--warmup", str(args.warmup), "--seed", str(args.seed),
                    "--timeout", "5", "--json", str(out), "--no-progress",
                ],
                cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            report = json.loads(out.read_text())
        cpu = tuple(cpu_s(s.pid) - b for s, b in zip(servers, before, strict=True))
        rss = tuple(rss_mb(server.pid) for server in servers)
        return Result(report, cpu, rss)
    finally:
        stop(servers)


def _latency(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "-"
    latency = cell["total"]["latency_ms"]
    return f"{latency['p50']:.1f} / {latency['p99']:.1f}"


def _errors(report: dict[str, Any]) -> int:
    total = report["all"]["total"]
    not_2xx = sum(count for status, count in total["status"].items() if status != "2xx")
    return not_2xx + sum(total["failures"].values()) + int(total["not_sent"])


def _parts(values: tuple[float, ...], total: float, fmt: str) -> str:
    if len(values) == 1:
        return format(total, fmt)
    return f"{format(total, fmt)} ({' + '.join(format(v, fmt) for v in values)})"


def main() -> None:
    """Run each topology in turn and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="offered req/s, open loop")
    parser.add_argument("--duration", type=float, default=20.0, help="measured s per topology")
    parser.add_argument("--warmup", type=float, default=3.0, help="warmup s per topology")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--topologies", default="one,two,edge", help="comma-separated: one, two, edge"
    )
    args = parser.parse_args()
    names = [name.strip() for name in args.topologies.split(",")]
    unknown = [name for name in names if name not in TOPOLOGIES]
    if unknown:
        parser.error(f"unknown topology {unknown[0]!r}; expected one, two")
    if not 0 < args.rate <= 1000 or not 0 < args.duration <= 120 or not 0 <= args.warmup <= 30:
        parser.error("bounds: --rate <= 1000, --duration <= 120 s, --warmup <= 30 s")
    os.sched_setaffinity(0, {0})  # the generator and the simulated services: core 0
    backends_port = free_port()
    backends = spawn(
        [PYTHON, "-c", BACKENDS_MAIN,
         "serve", "--port", str(backends_port), "--latency-profile", "realistic"],
        core=0,
    )  # fmt: skip
    results: dict[str, Result] = {}
    try:
        wait_listening(backends_port)
        for name in names:
            results[name] = _run(name, f"http://127.0.0.1:{backends_port}", args)
    finally:
        stop([backends])
    print(
        f"Topologies: {args.rate:g} req/s of the default device mix, open loop, "
        f"{args.duration:g} s after {args.warmup:g} s warmup; realistic backend latency; "
        "Frontdoor on core 1"
    )
    width = 30
    print(f"{'':<{width}}" + "".join(f"{LABELS[name]:>22}" for name in names))

    def row(label: str, values: list[str]) -> None:
        print(f"{label:<{width}}" + "".join(f"{value:>22}" for value in values))

    row("Frontdoor processes", [str(len(TOPOLOGIES[name])) for name in names])
    row("requests measured", [str(results[n].report["all"]["total"]["count"]) for n in names])
    row("not 2xx (incl. no response)", [str(_errors(results[n].report)) for n in names])
    for endpoint in ENDPOINTS:
        row(
            f"{endpoint} p50 / p99 ms",
            [_latency(results[n].report["endpoints"].get(endpoint)) for n in names],
        )
    row("all p50 / p99 ms", [_latency(results[n].report["all"]) for n in names])
    row(
        "CPU s per 1,000 requests",
        [
            _parts(
                tuple(c * 1000 / results[n].sent for c in results[n].cpu_s),
                sum(results[n].cpu_s) * 1000 / results[n].sent,
                ".2f",
            )
            for n in names
        ],
    )
    row(
        "RSS MB at the end",
        [_parts(results[n].rss_mb, sum(results[n].rss_mb), ".1f") for n in names],
    )
    lags = [f"{results[n].report['generator']['send_lag_ms']['p99']:.2f}" for n in names]
    row("generator send lag p99 ms", lags)


if __name__ == "__main__":
    main()
