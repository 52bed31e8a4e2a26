"""A rolling restart behind HAProxy, under load: does any request get lost?

Runs the recipe of docs/load-balancer.md on 127.0.0.1: the simulated microservices
(``bin/fake-backends``), two ``frontdoor serve --no-embedded`` instances on free ports,
HAProxy with ``examples/haproxy/frontdoor.cfg`` in front, and ``bin/loadtest`` at
``--rate`` through HAProxy for ``--warmup`` + ``--duration`` seconds. From ``--restart-at``
seconds into the run, instance 1 and then instance 2 are restarted the way an operator
would: SIGTERM, wait until HAProxy marks it DOWN and the process has exited, start it again,
wait for its ``/readyz`` 200 and for HAProxy to mark it UP.

Prints, per phase (before / during / after the restarts): requests, non-2xx, connection
errors (no HTTP response at all) and p50/p99/max latency from the scheduled send; the time
line of each restart; HAProxy's own counts of retried and redispatched connections. Exit
status 0 only when every request got a 2xx.

Bounded: the load stops by itself (``--duration``), every process started is stopped at the
end (killed if it does not stop), 127.0.0.1 only. Needs ``haproxy`` (``apt-get install
haproxy``; ``.ci/run`` installs it when it may).

``--grace`` sets the instances' ``server.drain_grace_s`` (the recipe's 2 s by default; 0 is
the drain without grace), ``--max-inflight`` their ``server.max_inflight`` (32, the default:
while one instance restarts the other carries everything, and on a shared machine a stall
can shed), ``--rounds`` repeats the rolling restart back to back.

    .venv/bin/python benchmarks/rolling_restart.py [--rate 100] [--duration 40] [--restart-at 10]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _processes import (
    BACKENDS_MAIN,
    LOADTEST_MAIN,
    PYTHON,
    ROOT,
    free_port,
    stop,
    wait_listening,
)

HAPROXY_CONFIG = ROOT / "examples" / "haproxy" / "frontdoor.cfg"
FRONTDOOR = str(Path(PYTHON).with_name("frontdoor"))
#: What every instance and the load generator share: real secrets (so the instances start
#: whatever the demo defaults become), no statsd traffic.
SECRETS = {
    "FRONTDOOR_AUTH_DEMO": "false",
    "FRONTDOOR_AUTH_TOKEN_SECRET": "rolling-restart-token-secret-0123456789abcdef",
    "FRONTDOOR_AUTH_ADMIN_TOKEN": "rolling-restart-admin-0123456789",
    "FRONTDOOR_STATSD_ENABLED": "false",
    # Every request reaches Frontdoor from HAProxy's one address: per-address limits would
    # throttle the whole load, which is not what this measures.
    "FRONTDOOR_LIMITS_ENABLED": "false",
}
POLL_S = 0.02
HTTP_OK = 200


def _wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``check`` (the state of another process: nothing to wait on instead)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(POLL_S)


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 - loopback
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class Processes:
    """Every child process of the run, with its log file; ``stop_all`` ends them."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``args`` in the checkout, stdout and stderr to ``LOGS/name.log``."""
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our interpreter, our scripts, haproxy
                args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._running.append(process)
        return process

    def stop_all(self) -> None:
        """SIGTERM everything still running, then wait (kill what does not stop in 15 s)."""
        stop([p for p in self._running if p.poll() is None])


class Balancer:
    """HAProxy's view, read from its stats page as CSV."""

    def __init__(self, stats_url: str) -> None:
        self.stats_url = stats_url

    def rows(self) -> dict[str, dict[str, str]]:
        """One row per ``proxy/server`` (``frontdoor/fd1``, ``devices/FRONTEND``, ...)."""
        with urllib.request.urlopen(self.stats_url + ";csv", timeout=2) as reply:  # noqa: S310
            text = reply.read().decode().removeprefix("# ")
        return {f"{r['pxname']}/{r['svname']}": r for r in csv.DictReader(io.StringIO(text))}

    def status(self, server: str) -> str:
        """``UP``, ``DOWN``, or a transition such as ``UP 1/2``."""
        return self.rows()[f"frontdoor/{server}"]["status"]

    def requests(self) -> int:
        """HTTP requests the device-facing frontend has received."""
        return int(self.rows()["devices/FRONTEND"]["req_tot"] or 0)


@dataclass
class Instance:
    """One ``frontdoor serve --no-embedded`` process, its port and its HAProxy name."""

    name: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    events: list[tuple[str, float]] = field(default_factory=list)

    @property
    def readyz(self) -> str:
        return f"http://127.0.0.1:{self.port}/readyz"

    def start(self, processes: Processes) -> None:
        """Start the process and wait for its ``/readyz`` 200."""
        args = [FRONTDOOR, "serve", "--no-embedded", "--port", str(self.port)]
        process = self.process = processes.start(self.name, args, self.env)

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {process.returncode} at start-up")
            return _status(self.readyz) == HTTP_OK

        _wait_for(f"{self.name} ready", ready, 30)


def rolling_restart(instance: Instance, processes: Processes, balancer: Balancer) -> None:
    """The operator's procedure for one instance, each step's time recorded."""
    process = instance.process
    if process is None:
        raise RuntimeError(f"{instance.name} was never started")
    instance.events.append(("SIGTERM", time.monotonic()))
    process.send_signal(signal.SIGTERM)
    _wait_for(f"{instance.name} DOWN", lambda: balancer.status(instance.name) == "DOWN", 15)
    instance.events.append(("marked DOWN", time.monotonic()))
    code = process.wait(timeout=30)
    instance.events.append((f"exited ({code})", time.monotonic()))
    instance.start(processes)
    instance.events.append(("/readyz 200", time.monotonic()))
    _wait_for(f"{instance.name} UP", lambda: balancer.status(instance.name) == "UP", 15)
    instance.events.append(("marked UP", time.monotonic()))


def _scenario(args: argparse.Namespace) -> str:
    """A constant rate cut into three phases by two (same-rate) steps."""
    during_end = args.restart_at + args.during
    return f"""
description = "rolling restart of two instances behind HAProxy"
[load]
steps = [{{at_s = 0, rate = {args.rate}}}, {{at_s = {args.restart_at}, rate = {args.rate}}},
         {{at_s = {during_end}, rate = {args.rate}}}]
duration_s = {args.duration}
warmup_s = {args.warmup}
timeout_s = 10
"""


def _cell(cell: dict[str, Any]) -> dict[str, Any]:
    statuses = cell["status"]
    latency = cell["latency_ms"]
    return {
        "count": cell["count"],
        "2xx": statuses.get("2xx", 0),
        "non-2xx": sum(n for status, n in statuses.items() if status != "2xx"),
        "conn errors": sum(cell["failures"].values()),
        "unsent": cell["not_sent"],
        "p50": latency.get("p50"),
        "p99": latency.get("p99"),
        "max": latency.get("max"),
    }


def _print_table(report: dict[str, Any]) -> dict[str, Any]:
    names = ["before", "during", "after"]
    phases = list(report["all"]["phases"].values())
    rows = [(name, _cell(cell)) for name, cell in zip(names, phases, strict=False)]
    total = _cell(report["all"]["total"])
    rows.append(("all", total))
    header = f"{'phase':8} {'count':>6} {'2xx':>6} {'non-2xx':>8} {'conn err':>8} {'unsent':>6}"
    print(header + f" {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, row in rows:
        print(
            f"{name:8} {row['count']:6} {row['2xx']:6} {row['non-2xx']:8} "
            f"{row['conn errors']:8} {row['unsent']:6} {row['p50']:8.1f} {row['p99']:8.1f} "
            f"{row['max']:8.1f}"
        )
    for key, sample in report.get("error_samples", {}).items():
        print(f"  first {key}: {sample}")
    return total


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=40.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds excluded")
    parser.add_argument("--restart-at", type=float, default=10.0, help="s into the run")
    parser.add_argument("--during", type=float, default=10.0, help="s the 'during' phase spans")
    parser.add_argument(
        "--grace", type=float, default=2.0, help="server.drain_grace_s of the instances"
    )
    parser.add_argument(
        "--max-inflight", type=int, default=32, help="server.max_inflight of the instances"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rolling restarts, back to back")
    parser.add_argument("--latency-profile", default="realistic", help="simulated services")
    parser.add_argument("--config", default=str(HAPROXY_CONFIG), help="HAProxy config")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    return parser


@dataclass
class Run:
    """What one run left behind: the generator's report and exit code, the restarts' time
    lines (from the run's start), HAProxy's last stats rows."""

    report: dict[str, Any]
    code: int
    instances: list[Instance]
    started: float
    rows: dict[str, dict[str, str]]


def run(args: argparse.Namespace, haproxy: str, logs: Path) -> Run:
    """Start everything, load it, restart the instances in turn, stop everything."""
    processes = Processes(logs)
    backends_port, lb_port, stats_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        **SECRETS,
        "FRONTDOOR_BACKENDS_BASE_URL": f"http://127.0.0.1:{backends_port}",
        "FRONTDOOR_SERVER_DRAIN_GRACE_S": str(args.grace),
        "FRONTDOOR_SERVER_MAX_INFLIGHT": str(args.max_inflight),
    }
    instances = [Instance(f"fd{i}", free_port(), env) for i in (1, 2)]
    lb_env = {
        **os.environ,
        "FRONTDOOR_LB_BIND": f"127.0.0.1:{lb_port}",
        "FRONTDOOR_LB_STATS": f"127.0.0.1:{stats_port}",
        "FRONTDOOR_1": f"127.0.0.1:{instances[0].port}",
        "FRONTDOOR_2": f"127.0.0.1:{instances[1].port}",
    }
    balancer = Balancer(f"http://127.0.0.1:{stats_port}/stats")
    report_path = logs / "loadtest.json"
    scenario_path = logs / "rolling-restart.toml"
    scenario_path.write_text(_scenario(args))
    try:
        backends = [PYTHON, "-c", BACKENDS_MAIN, "serve", "--port", str(backends_port)]
        processes.start("backends", [*backends, "--latency-profile", args.latency_profile], env)
        wait_listening(backends_port)
        for instance in instances:
            instance.start(processes)
        processes.start("haproxy", [haproxy, "-db", "-f", args.config], lb_env)
        wait_listening(stats_port)
        for instance in instances:
            _wait_for(f"{instance.name} UP", lambda i=instance: balancer.status(i.name) == "UP", 15)
        before = balancer.requests()
        load = processes.start(
            "loadtest",
            [PYTHON, "-c", LOADTEST_MAIN, "--scenario", str(scenario_path),
             "--target", f"http://127.0.0.1:{lb_port}", "--json", str(report_path),
             "--no-progress", "--seed", "11"],
            env,
        )  # fmt: skip
        # The run starts right after the generator's one /healthz probe.
        _wait_for("the load to start", lambda: balancer.requests() >= before + 2, 30)
        started = time.monotonic()
        time.sleep(args.restart_at)  # the schedule: the "before" phase
        for _ in range(args.rounds):
            for instance in instances:
                rolling_restart(instance, processes, balancer)
        code = load.wait(timeout=args.warmup + args.duration + 30)
        rows = balancer.rows()
    finally:
        processes.stop_all()
    report = json.loads(report_path.read_text())
    return Run(report, code, instances, started, rows)


def _print_run(result: Run, load_s: float) -> None:
    sigterms = [at for i in result.instances for what, at in i.events if what == "SIGTERM"]
    under_load = sum(1 for at in sigterms if at - result.started < load_s)
    print(f"restarts (s into the run; {under_load} of {len(sigterms)} begun under load):")
    for instance in result.instances:
        events = [f"{what} {at - result.started:.2f}" for what, at in instance.events]
        for first in range(0, len(events), 5):
            print(f"  {instance.name}: {', '.join(events[first : first + 5])}")
    for server in ("fd1", "fd2"):
        row = result.rows[f"frontdoor/{server}"]
        print(
            f"haproxy {server}: connect errors {row['econ'] or 0}, response errors "
            f"{row['eresp'] or 0}, retried {row['wretr'] or 0}, redispatched "
            f"{row['wredis'] or 0}, sessions {row['stot']}"
        )


def main() -> int:
    args = _parser().parse_args()
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        print("rolling_restart: needs haproxy: apt-get install haproxy", file=sys.stderr)
        return 2
    logs = Path(tempfile.mkdtemp(prefix="rolling-restart-"))
    try:
        result = run(args, haproxy, logs)
    finally:
        if args.keep_logs:
            print(f"logs: {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    print(
        f"== rolling restart of 2 instances behind HAProxy {_haproxy_version(haproxy)}, "
        f"{result.report['run']['load']}, {args.warmup:g} s warmup + {args.duration:g} s, "
        f"{args.latency_profile} backend latency, server.drain_grace_s {args.grace:g}, "
        f"server.max_inflight {args.max_inflight}, "
        f"{args.rounds} round(s) (loadtest exit {result.code})"
    )
    total = _print_table(result.report)
    _print_run(result, args.warmup + args.duration)
    lost = total["non-2xx"] + total["conn errors"] + total["unsent"]
    print(f"lost: {lost}")
    return 0 if lost == 0 else 1


def _haproxy_version(haproxy: str) -> str:
    out = subprocess.run([haproxy, "-v"], capture_output=True, text=True, check=False).stdout  # noqa: S603
    return out.split()[2] if len(out.split()) > 2 else "?"


if __name__ == "__main__":
    raise SystemExit(main())
