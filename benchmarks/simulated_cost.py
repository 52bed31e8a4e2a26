"""What the simulated microservices cost: their CPU per backend call and per device request.

Starts ``bin/fake-backends serve`` alone on core 0 and one Frontdoor (``frontdoor serve
--no-embedded``) calling it, then drives Frontdoor with ``bin/loadtest``'s engine: the
default device mix (that of ``scenarios/baseline.toml``) at an open-loop rate. Frontdoor
and the generator share core 1. The simulated services' CPU (user + system, from /proc)
and the calls they received (their ``/_stats`` admin API, reset once they listen) are read
over the whole run, warmup included, so building the world at start-up is not counted.

``--compare ROOT`` also measures the simulated services imported from another checkout
(the same Frontdoor calls both), e.g. those of commit 26e5214, before their fast paths::

    mkdir /tmp/base && git archive 26e5214 backends | tar -x -C /tmp/base
    .venv/bin/python benchmarks/simulated_cost.py --compare /tmp/base --repeat 3

``--repeat N`` alternates the sides N times and shows each side's median run, plus every
run's CPU per call: on a shared machine single runs differ by 10-20%.

Bounded: about ``--warmup + --duration + 10`` seconds per measurement, 127.0.0.1 only.

    .venv/bin/python benchmarks/simulated_cost.py [--rate 50] [--duration 20] [--warmup 3]
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
from urllib.request import Request, urlopen

from _processes import (
    BACKENDS_MAIN,
    LOADTEST_MAIN,
    PYTHON,
    ROOT,
    cpu_s,
    free_port,
    spawn,
    stop,
    wait_listening,
)

FRONTDOOR = str(Path(PYTHON).with_name("frontdoor"))


@dataclass(frozen=True, slots=True)
class Result:
    """One run: what the generator sent and what the simulated services did and used."""

    device_requests: int
    not_2xx: int
    calls: dict[str, int]
    cpu_s: float

    @property
    def backend_calls(self) -> int:
        """Calls the simulated services received."""
        return sum(self.calls.values())


def _admin(base: str, method: str, path: str) -> dict[str, Any]:
    # Only ever the loopback URL built from a port chosen here.
    request = Request(f"{base}{path}", method=method)  # noqa: S310 - http://127.0.0.1 only
    with urlopen(request, timeout=5) as reply:  # noqa: S310 - same
        decoded: dict[str, Any] = json.loads(reply.read())
    return decoded


def _drive(target: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "report.json"
        subprocess.run(  # noqa: S603 - bin/loadtest's engine, same interpreter
            [
                PYTHON, "-c", LOADTEST_MAIN, "--target", target,
                "--rate", str(args.rate), "--duration", str(args.duration),
                "--warmup", str(args.warmup), "--seed", str(args.seed),
                "--timeout", "5", "--json", str(out), "--no-progress",
            ],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        report: dict[str, Any] = json.loads(out.read_text())
    return report


def _not_2xx(report: dict[str, Any]) -> int:
    total = report["all"]["total"]
    not_2xx = sum(count for status, count in total["status"].items() if status != "2xx")
    return not_2xx + sum(total["failures"].values()) + int(total["not_sent"])


def _measure(args: argparse.Namespace, services_root: Path | None) -> Result:
    """One run; the simulated services are imported from ``services_root`` when given."""
    backends_port, frontdoor_port = free_port(), free_port()
    backends_url = f"http://127.0.0.1:{backends_port}"
    program = BACKENDS_MAIN
    if services_root is not None:
        # Ahead of the checkout, which `python -c` puts first on the path.
        program = f"import sys; sys.path.insert(0, {str(services_root)!r}); {program}"
    processes = [
        spawn(
            [PYTHON, "-c", program, "serve", "--port", str(backends_port),
             "--latency-profile", args.latency_profile],
            core=0,
        ),
    ]  # fmt: skip
    try:
        # --no-embedded: the demo secrets (which the load's tokens use) only by opt-in.
        frontdoor_env = dict(
            os.environ, FRONTDOOR_BACKENDS_BASE_URL=backends_url, FRONTDOOR_AUTH_DEMO="true"
        )
        processes.append(
            spawn(
                [FRONTDOOR, "serve", "--no-embedded", "--port", str(frontdoor_port)],
                core=1,
                env=frontdoor_env,
            )
        )
        wait_listening(backends_port)
        wait_listening(frontdoor_port)
        backends = processes[0]
        _admin(backends_url, "DELETE", "/_stats")
        before = cpu_s(backends.pid)
        report = _drive(f"http://127.0.0.1:{frontdoor_port}", args)
        used = cpu_s(backends.pid) - before
        calls: dict[str, int] = _admin(backends_url, "GET", "/_stats")["requests"]
    finally:
        stop(processes)
    total = report["all"]["total"]
    sent = int(total["sent"]) + int(report["generator"]["warmup_requests"])
    return Result(sent, _not_2xx(report), calls, used)


def _per_call_us(result: Result) -> float:
    return result.cpu_s * 1e6 / max(1, result.backend_calls)


def _print(runs: dict[str, list[Result]], args: argparse.Namespace) -> None:
    print(
        f"Simulated services' cost: {args.rate:g} req/s of the default device mix through "
        f"Frontdoor, {args.duration:g} s after {args.warmup:g} s warmup; "
        f"{args.latency_profile} latency; services alone on core 0; "
        f"median of {args.repeat} run(s)"
    )
    width = 34
    print(f"{'':<{width}}" + "".join(f"{name:>16}" for name in runs))

    def row(label: str, values: list[str]) -> None:
        print(f"{label:<{width}}" + "".join(f"{value:>16}" for value in values))

    wall = args.warmup + args.duration
    # The run with the median CPU per call stands for its side; the spread says how much
    # to trust the difference on a machine that other work shares.
    medians = [sorted(results, key=_per_call_us)[len(results) // 2] for results in runs.values()]
    row("device requests sent", [str(r.device_requests) for r in medians])
    row("  not 2xx (incl. no response)", [str(r.not_2xx) for r in medians])
    row("backend calls", [str(r.backend_calls) for r in medians])
    row(
        "  per device request",
        [f"{r.backend_calls / max(1, r.device_requests):.2f}" for r in medians],
    )
    row("services' CPU s", [f"{r.cpu_s:.2f}" for r in medians])
    row("  per backend call, us", [f"{_per_call_us(r):.0f}" for r in medians])
    row(
        "  per device request, ms",
        [f"{r.cpu_s * 1e3 / max(1, r.device_requests):.2f}" for r in medians],
    )
    row("  share of one core", [f"{r.cpu_s / wall * 100:.1f}%" for r in medians])
    if args.repeat > 1:
        row(
            "per backend call, all runs, us",
            [" ".join(f"{_per_call_us(r):.0f}" for r in results) for results in runs.values()],
        )
    busiest = sorted(medians[-1].calls.items(), key=lambda item: -item[1])
    print("calls by service: " + ", ".join(f"{name} {count}" for name, count in busiest if count))
    if any(r.not_2xx for results in runs.values() for r in results):
        print("warning: some requests failed; the machine may have been busy (rerun)")


def main() -> None:
    """Measure (and optionally compare) the simulated services' CPU and print one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="device req/s, open loop")
    parser.add_argument("--duration", type=float, default=20.0, help="measured s")
    parser.add_argument("--warmup", type=float, default=3.0, help="warmup s")
    parser.add_argument("--seed", type=int, default=11, help="the generator's seed")
    parser.add_argument(
        "--latency-profile", default="realistic", choices=("none", "fast", "realistic")
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="ROOT",
        help="first measure the simulated services of another checkout (a directory holding "
        "its backends/ package)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per side; the median run is shown"
    )
    args = parser.parse_args()
    if not 1 <= args.repeat <= 9:
        parser.error("--repeat: 1 to 9")
    if not 0 < args.rate <= 1000 or not 0 < args.duration <= 120 or not 0 <= args.warmup <= 30:
        parser.error("bounds: --rate <= 1000, --duration <= 120 s, --warmup <= 30 s")
    if args.compare is not None and not (args.compare / "backends" / "simulated").is_dir():
        parser.error(f"--compare: no backends/simulated/ under {args.compare}")
    os.sched_setaffinity(0, {1})  # the generator shares core 1 with Frontdoor
    roots: dict[str, Path | None] = {"this tree": None}
    if args.compare is not None:
        roots = {"before": args.compare.resolve(), "after": None}
    runs: dict[str, list[Result]] = {name: [] for name in roots}
    for _ in range(args.repeat):
        # Alternated, so that a change in the machine's load hits both sides alike.
        for name, root in roots.items():
            runs[name].append(_measure(args, root))
    _print(runs, args)


if __name__ == "__main__":
    main()
