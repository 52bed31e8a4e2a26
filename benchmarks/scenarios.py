"""The demo's promise: every shipped scenario against ``bin/serve``, at its own rate, with
no shedding, while the serve process stays under 60% of one core.

For each scenario (default: every ``scenarios/*.toml``) a fresh Frontdoor serves on core 1
as ``bin/serve`` starts it (embedded simulated microservices, realistic latency: one
process), and ``bin/loadtest --scenario FILE --seed 11`` drives it from core 0. The serve
process's CPU comes from /proc over the whole run (warmup included), divided by the
requests sent in that time.

``--split`` runs Frontdoor (``--no-embedded``, core 1) and the simulated services
(``bin/fake-backends``, core 0 with the generator) as two processes instead, to state what
each costs per device request.

Columns: ``sent`` requests (warmup included); ``shed`` = 503 ``overloaded``; ``5xx`` all
5xx (shed included); ``fail`` = no HTTP response; ``core`` = the serve process's CPU share
of one core over the run; ``CPU/req`` its CPU per request; with ``--split`` the simulated
services' share and CPU per device request too. ``verdict``: ok when nothing was shed and
the core share stayed under ``--core-limit`` (the ``overload`` scenario exists to shed:
its verdict reads the other way, ``sheds``, when it did).

    .venv/bin/python benchmarks/scenarios.py [--split] [--only baseline,overload]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

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

SERVE_CORE, LOAD_CORE = 1, 0
#: The scenario that is meant to shed (it offers twice the capacity it was written for).
SHEDDING_SCENARIOS = frozenset({"overload"})
#: bin/loadtest's exit status when a threshold was crossed (orchestrator/loadtest/cli.py).
THRESHOLDS_CROSSED = 99


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    env["FRONTDOOR_STATSD_ENABLED"] = "true"  # as bin/serve: metrics on (nobody listening)
    return env


def _start(split: bool, folder: Path) -> tuple[list[subprocess.Popen[bytes]], int, int | None]:
    """Frontdoor (and, with ``split``, the simulated services); returns once both listen."""
    port, backends_port = free_port(), free_port()
    frontdoor = str(Path(PYTHON).with_name("frontdoor"))
    env = _env()
    processes = []
    if split:
        backends = spawn(
            [PYTHON, "-c", BACKENDS_MAIN, "serve", "--port", str(backends_port),
             "--latency-profile", "realistic"],
            LOAD_CORE, env,
        )  # fmt: skip
        processes.append(backends)
        wait_listening(backends_port)
        env["FRONTDOOR_BACKENDS_BASE_URL"] = f"http://127.0.0.1:{backends_port}"
        # Not the embedded demo: the demo secrets (which bin/loadtest signs with) by opt-in.
        env["FRONTDOOR_AUTH_DEMO"] = "true"
        args = [frontdoor, "serve", "--no-embedded", "--port", str(port)]
    else:
        args = [frontdoor, "serve", "--port", str(port), "--backends-port", str(backends_port)]
    with (folder / "serve.log").open("wb") as log:
        serve = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
    os.sched_setaffinity(serve.pid, {SERVE_CORE % (os.cpu_count() or 1)})
    processes.insert(0, serve)
    wait_listening(port)
    wait_listening(backends_port)
    return processes, port, backends_port


def _run(scenario: Path, split: bool, folder: Path) -> dict[str, Any]:
    processes, port, backends_port = _start(split, folder)
    try:
        report_path = folder / f"{scenario.stem}.json"
        before = [cpu_s(process.pid) for process in processes]
        started = time.monotonic()
        loadtest = subprocess.run(  # noqa: S603 - bin/loadtest's engine, same interpreter
            [PYTHON, "-c", LOADTEST_MAIN, "--scenario", str(scenario), "--seed", "11",
             "--target", f"http://127.0.0.1:{port}",
             "--backends", f"http://127.0.0.1:{backends_port}",
             "--json", str(report_path), "--no-progress"],
            cwd=ROOT, env=_env(), capture_output=True, check=False, timeout=600,
        )  # fmt: skip
        (folder / f"{scenario.stem}.txt").write_bytes(loadtest.stdout)
        elapsed = time.monotonic() - started
        used = [cpu_s(process.pid) - b for process, b in zip(processes, before, strict=True)]
    finally:
        stop(processes)
    # 99: a threshold crossed. The run is complete and measured; that is a column.
    if loadtest.returncode not in (0, THRESHOLDS_CROSSED) or not report_path.exists():
        raise RuntimeError(f"{scenario.name}: bin/loadtest failed:\n{loadtest.stderr.decode()}")
    report = json.loads(report_path.read_text())
    total = report["all"]["total"]
    sent = total["sent"] + report["generator"]["warmup_requests"]
    return {
        "scenario": scenario.stem,
        "thresholds": "pass" if loadtest.returncode == 0 else "FAIL",
        "sent": sent,
        "shed": sum(n for key, n in total["retry_after"].items() if key.endswith("overloaded")),
        "5xx": total["status"].get("5xx", 0),
        "fail": sum(total["failures"].values()),
        "p99_ms": total["latency_ms"]["p99"],
        "elapsed_s": round(elapsed, 1),
        "cpu_s": [round(u, 2) for u in used],
        "core_share": [round(u / elapsed, 3) for u in used],
        "cpu_ms_per_request": [round(u / max(1, sent) * 1000, 2) for u in used],
    }


def main() -> int:
    """Run the scenarios and print one row each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated scenario names (default: all)")
    parser.add_argument("--split", action="store_true", help="simulated services apart")
    parser.add_argument("--core-limit", type=float, default=0.60, help="serve core share")
    parser.add_argument("--json", help="write the rows as JSON")
    args = parser.parse_args()
    scenarios = sorted((ROOT / "scenarios").glob("*.toml"))
    if args.only:
        wanted = set(args.only.split(","))
        scenarios = [path for path in scenarios if path.stem in wanted]
    os.sched_setaffinity(0, {LOAD_CORE})  # the generator (and split backends) on core 0
    folder = Path(tempfile.mkdtemp(prefix="frontdoor-scenarios-"))
    shape = "frontdoor --no-embedded + fake-backends" if args.split else "bin/serve"
    print(f"{shape} on core {SERVE_CORE}, bin/loadtest --seed 11 on core {LOAD_CORE}")
    header = f"{'scenario':16} {'sent':>6} {'shed':>5} {'5xx':>5} {'fail':>5} {'p99 ms':>7}"
    header += f" {'core':>6} {'CPU/req':>8}"
    if args.split:
        header += f" {'sim core':>8} {'sim/req':>8}"
    print(header + "  verdict")
    rows = []
    for scenario in scenarios:
        row = _run(scenario, args.split, folder)
        rows.append(row)
        share, per_request = row["core_share"][0], row["cpu_ms_per_request"][0]
        if scenario.stem in SHEDDING_SCENARIOS:
            verdict = "sheds (by design)" if row["shed"] else "did not shed"
        else:
            verdict = "ok" if not row["shed"] and share < args.core_limit else "FAILS"
        line = (
            f"{row['scenario']:16} {row['sent']:6} {row['shed']:5} {row['5xx']:5} "
            f"{row['fail']:5} {row['p99_ms']:7.1f} {share:6.0%} {per_request:6.2f}ms"
        )
        if args.split:
            line += f" {row['core_share'][1]:8.0%} {row['cpu_ms_per_request'][1]:6.2f}ms"
        print(line + f"  {verdict}; thresholds {row['thresholds']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print(f"bin/loadtest's reports (phase tables, JSON): {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
