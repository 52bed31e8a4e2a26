"""Scaling out with gunicorn's gevent worker: do N workers on N cores serve N times one?

The requirement: with ``gunicorn -k gevent``, N workers on N cores serve >= 0.9 x N times
what one worker serves. This machine has 2 cores, and the fixed-delay nginx backends and
the load generators must run on them too: no row can give Frontdoor N whole cores while
the load runs elsewhere. So the script measures what it can directly and infers the rest
from CPU per request, saying which is which.

The workload is benchmarks/peers.py's (imported, not copied): one nginx (echo module)
answers every backend call after a fixed delay with a captured body; the endpoint is
``POST /v1/playback/play`` (``--endpoint home``: the other one); Frontdoor has every
mechanism on (bulkheads for 64 connections, max_inflight 256, statsd to a UDP sink, the
JSON access log to a file). Configurations, one at a time (gunicorn as README.md's
"Operations" runs it, plus ``--graceful-timeout 5`` and a hook reporting each worker ready):

- ``serve``: ``frontdoor serve`` (gevent's pywsgi with the project's handler,
  orchestrator/frontend/httpserver.py), one process on core 1: the reference;
- ``gevent-1``: ``gunicorn -k gevent -w 1`` (gunicorn's own HTTP parser, pure Python
  without the optional gunicorn_h1c), worker and arbiter on core 1: the baseline (``x g1``);
- ``gevent-2-one-core``: ``-w 2``, both workers on core 1: the same core as ``gevent-1``,
  so a loss is what two workers cost where one would do (two actor systems, two sets of
  backend connections, a shared listener, and at saturation two busy processes
  time-sharing the core);
- ``gevent-2-two-cores``: ``-w 2``, one worker on core 1, one on core 0 (which nginx, wrk
  and the generator also use): the most this machine can give two workers;
- ``gevent-2-floating``: ``-w 2`` with workers, nginx and wrk free to use both cores, as
  an unpinned deployment;
- ``pywsgi-1``: ``-k gevent_pywsgi -w 1`` (gevent's pywsgi server with its stock handler,
  i.e. the stdlib's header parser, inside gunicorn's worker), on core 1;
- ``lean-1``: ``-k orchestrator.frontend.gunicorn_worker.FrontdoorWorker`` (gevent_pywsgi with
  ``frontdoor serve``'s request handler, ``orchestrator/frontend/httpserver.py``), on core 1;
- ``pywsgi-2-two-cores`` (only with ``--only``): ``-k gevent_pywsgi -w 2`` placed as
  ``gevent-2-two-cores``.

Workers are pinned on every thread (/proc/PID/task), after gunicorn has forked them; the
load (nginx, wrk, the generator, this script) runs on core 0 unless the row says 0-1.
Each configuration is started, checked with one full request, then measured three times:

1. fixed load, ``--rate``/2 and ``--rate`` req/s per worker (default 125 and 250: about
   a fifth and two fifths of a core; 2 workers get twice the total): an open loop
   (benchmarks/peers/openloop.py) for ``--open-duration`` s after 1 s of warmup. CPU per
   request: the CPU of every worker process (user + system, from /proc) over the whole
   run divided by every request sent; the arbiter's is counted apart (``arb``, us/req);
2. saturation: wrk with ``--connections`` keep-alive connections per worker (64: what
   the bulkheads are sized for), ``--duration`` s after 2 s of warmup: req/s, CPU per
   request as above, each worker's share of a core.

The machine is shared: before each configuration the script waits up to ``--quiet-wait``
s for the cores to go idle, and repeats a measurement (up to ``--retries`` times, keeping
the least disturbed) while other processes used > 10% of a core during it. Every
configuration runs once per round (``--rounds``, each round in a rotated order). The
tables show one round per cell, the least disturbed: at a fixed load the one with the
least CPU used by other processes, at saturation the one with the most req/s (other
processes can only take from it); ``+-`` is the spread over rounds ((max - min) / 2 /
median).

How to read it. ``x g1`` is the ratio to ``gevent-1`` in the same column. Fixed load: a
two-worker row near 1.00x means a request costs a worker the same whether it has a
sibling or not, at the same load per worker (the inference below rests on this). The
issue's own method, the same total rate for 1 and 2 workers, is gevent-1's ``--rate``
column against a two-worker row's ``--rate``/2 column; the summary shows it, and why it
overstates the cost (one worker alone also costs more per request when less busy: fewer
requests per event-loop wakeup). Saturation: ``fd`` is the cores the workers used
together (``split``: each worker, %), ``load`` nginx + wrk + this script, ``other``
whatever else ran (noise), ``c0``/``c1`` how busy each core was. ``!`` marks a row limited
by something else than Frontdoor even in its best round (its workers < 90% of their core,
the load core > 90% busy, other processes > 10% of a core, or the cores not full in a
two-core row): its req/s measured the machine, its CPU per request stays meaningful.
``~`` marks a fixed-load cell disturbed in every round (other processes or a late
generator). The summary spells out:

- measured: CPU per request of two workers against one, at equal load per worker and at
  saturation; req/s of 2 workers sharing one core against 1 (what oversubscribing a core
  costs); req/s of 2 workers on 2 cores that also run the load, in total and per core of
  Frontdoor CPU (the direct measurement, with load generation taking part of the cores);
- inferred: N workers on N idle cores serve ~N x e x one worker, e = (CPU/req of a lone
  worker) / (CPU/req of a worker of two) in ``gevent-2-two-cores`` (one worker per core,
  the requirement's layout), the worst of its three cells (two fixed loads, saturation);
  the requirement holds if e >= 0.9. Assumed, not shown here: independent cores (this VM
  reports 1 thread per core; an SMT sibling or a shared turbo budget would lower e), the
  load generated elsewhere, and connections spread evenly over workers (``split`` shows
  how evenly the kernel spread wrk's connections).

CPU per request depends on load, not only on the code: a less busy event loop handles
fewer requests per wakeup, so compare cells in one column only (the same load per
worker), never a fixed-load cell with a saturation one.

Plan for N > 2 (on paper): a machine with N cores for Frontdoor plus cores (or a host) for
the load. Pin worker i to core i as this script does; nginx with enough
``worker_processes`` and wrk with several threads on the other cores, 64 wrk
connections per worker; sweep N = 1, 2, 4, ...; require req/s(N) >= 0.9 x N x req/s(1) with
every worker >= 90% busy and the load cores < 90% busy. What could break it at large N
and cannot show at N = 2: accept imbalance on gunicorn's one shared listening socket
(few long-lived connections from a load balancer land on few workers: check the split,
give the balancer many connections), N x the backend connections (each worker has its
own bulkheads: N x 64 per backend), L3 and memory bandwidth shared by all cores, and a
statsd daemon receiving N x the packets.

    .venv/bin/python benchmarks/scaling.py [--rate 250] [--open-duration 5] [--duration 5]
        [--connections 64] [--rounds 2] [--retries 2] [--quiet-wait 15]
        [--only serve,gevent-1,...] [--endpoint play] [--json OUT.json]

Bounded: about 30 s per configuration per round when the machine is quiet (7
configurations x 2 rounds: ~7 min), at most about 3x that plus the waits when it is not;
127.0.0.1 only; every process it starts is stopped. Needs what benchmarks/peers.py needs,
and gunicorn with gevent in the virtualenv (the ``test`` or ``gunicorn`` extra).
"""

# peers.py's helpers keep their leading underscore (it is a script first): reused, not copied.
# ruff: noqa: SLF001

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peers
from _processes import PYTHON, cpu_s, free_port, rss_mb, stop

GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
LOAD_CORE = peers.LOAD_CORE
FRONT_CORE = peers.IMPL_CORE
BOTH_CORES = (0, 1)
BASELINE = "gevent-1"
EXPECT = '"degraded":[]'  # Frontdoor's good reply: nothing degraded
#: A gunicorn config file: each worker says when it has loaded the app, and its pid.
READY = "SCALING_WORKER_READY"
GUNICORN_CONF = f"""
import sys


def post_worker_init(worker):
    print("{READY}", worker.pid, file=sys.stderr, flush=True)
"""
#: Frontdoor's gunicorn worker class (orchestrator/frontend/gunicorn_worker.py): gevent_pywsgi with
#: the request handler of ``frontdoor serve``.
LEAN_WORKER_CLASS = "orchestrator.frontend.gunicorn_worker.FrontdoorWorker"
#: The requirement: N workers on N cores serve >= this x N times one worker.
REQUIRED = 0.9
SUSPECT_OWN_SHARE = 0.9
SUSPECT_LOAD_BUSY = 0.9
SUSPECT_OTHER = 0.1


@dataclass(frozen=True)
class Config:
    """How to run Frontdoor: which server, and the cores each worker may use."""

    name: str
    server: str  # "serve", "lean" (LEAN_WORKER_CLASS), or a gunicorn worker class
    cores: tuple[tuple[int, ...], ...]  # one entry per worker
    load: tuple[int, ...] = (LOAD_CORE,)  # nginx, wrk, the generator, this script

    @property
    def workers(self) -> int:
        """How many worker processes serve."""
        return len(self.cores)

    @property
    def label(self) -> str:
        """The server as a command line, short."""
        if self.server == "serve":
            return "frontdoor serve"
        if self.server == "lean":
            return f"gunicorn -k FrontdoorWorker -w {self.workers}"
        return f"gunicorn -k {self.server} -w {self.workers}"

    @property
    def where(self) -> str:
        """Each worker's cores (``0-1``: either), ``|`` between workers."""
        return "|".join("-".join(map(str, cores)) for cores in self.cores)

    @property
    def one_core(self) -> bool:
        """Whether every worker runs on the one Frontdoor core (the load has its own)."""
        return all(cores == (FRONT_CORE,) for cores in self.cores)


#: The two-worker ``-k gevent`` configurations, and the one most like N workers on N cores
#: (one worker per core), which the scaling inference rests on.
TWO_WORKER_GEVENT = ("gevent-2-one-core", "gevent-2-two-cores", "gevent-2-floating")
INFERENCE_ROW = "gevent-2-two-cores"
CONFIGS = {
    config.name: config
    for config in (
        Config("serve", "serve", ((FRONT_CORE,),)),
        Config("gevent-1", "gevent", ((FRONT_CORE,),)),
        Config("gevent-2-one-core", "gevent", ((FRONT_CORE,), (FRONT_CORE,))),
        Config("gevent-2-two-cores", "gevent", ((FRONT_CORE,), (LOAD_CORE,))),
        Config("gevent-2-floating", "gevent", (BOTH_CORES, BOTH_CORES), load=BOTH_CORES),
        Config("pywsgi-1", "gevent_pywsgi", ((FRONT_CORE,),)),
        Config("lean-1", "lean", ((FRONT_CORE,),)),
        Config("pywsgi-2-two-cores", "gevent_pywsgi", ((FRONT_CORE,), (LOAD_CORE,))),
    )
}
#: What runs without --only: every configuration but the second pywsgi one (it only
#: repeats, for -k gevent_pywsgi, what gevent-2-two-cores shows).
DEFAULT = tuple(name for name in CONFIGS if name != "pywsgi-2-two-cores")


# -- processes ---------------------------------------------------------------------------------


def pin(pid: int, cores: tuple[int, ...]) -> None:
    """Every thread of ``pid`` (sched_setaffinity on a pid moves only that one thread)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), set(cores))
        except ProcessLookupError:
            continue  # a thread that just ended


def _children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


@dataclass
class Running:
    """A started configuration: the process we started, its port, its worker processes."""

    config: Config
    started: peers.Started
    port: int
    workers: tuple[int, ...]
    master: int | None  # gunicorn's arbiter

    def worker_cpu(self) -> tuple[float, ...]:
        """CPU seconds used so far by each worker."""
        return tuple(cpu_s(pid) for pid in self.workers)

    def master_cpu(self) -> float:
        """CPU seconds used so far by the arbiter (0 without one)."""
        return cpu_s(self.master) if self.master else 0.0

    def check_alive(self) -> None:
        """BenchmarkError if a worker died or was replaced during the measurement."""
        if self.started.process.poll() is not None:
            raise peers.BenchmarkError(
                f"{self.config.name} exited: {peers._tail(self.started.log)}"
            )
        if self.master and _children(self.master) != set(self.workers):
            raise peers.BenchmarkError(
                f"{self.config.name}: gunicorn replaced a worker "
                f"({sorted(self.workers)} -> {sorted(_children(self.master))}); "
                f"log:\n{peers._tail(self.started.log)}"
            )


def _await_workers(started: peers.Started, count: int, timeout_s: float = 90.0) -> tuple[int, ...]:
    """The pids of ``count`` workers, once each has loaded the app."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and started.process.poll() is None:
        lines = started.log.read_text(errors="replace").splitlines()
        pids = [int(line.split()[1]) for line in lines if line.startswith(READY)]
        if len(pids) >= count:
            return tuple(pids[:count])
        time.sleep(0.2)  # polling a log file the workers write: nothing to wait on instead
    raise peers.BenchmarkError(
        f"{started.name}: {count} workers did not start (exit code {started.process.poll()}); "
        f"last lines of {started.log}:\n{peers._tail(started.log)}"
    )


def start(config: Config, bench: peers.Bench, attempt: int) -> Running:
    """Start ``config`` and pin its workers; returns once every worker serves."""
    if config.server == "serve":
        started, port = peers.start_impl(peers.IMPLS["frontdoor"], bench)
        return Running(config, started, port, (started.process.pid,), None)
    port = free_port()
    conf = bench.folder / "gunicorn_conf.py"
    conf.write_text(GUNICORN_CONF)
    worker = LEAN_WORKER_CLASS if config.server == "lean" else config.server
    env = peers._frontdoor_env(bench.backends_url, bench.statsd.port)
    env.pop("GUNICORN_CMD_ARGS", None)
    args = [
        GUNICORN, "-k", worker, "-w", str(config.workers),
        "-b", f"127.0.0.1:{port}", "--no-control-socket", "--graceful-timeout", "5",
        "-c", str(conf), "orchestrator.wsgi:application",
    ]  # fmt: skip
    log = bench.folder / f"{config.name}-{attempt}.log"
    # Pinned at once, before it forks: the workers (and their threads) inherit the core.
    started = peers._start(config.label, args, FRONT_CORE, log, env)
    try:
        pin(started.process.pid, tuple(sorted({c for cores in config.cores for c in cores})))
        workers = _await_workers(started, config.workers)
        for pid, cores in zip(workers, config.cores, strict=True):
            pin(pid, cores)
        peers._await_port(started, port)
    except BaseException:
        stop_running(started, ())
        raise
    return Running(config, started, port, workers, started.process.pid)


def stop_running(started: peers.Started, workers: tuple[int, ...]) -> None:
    """Stop what ``start`` started; a worker still there 5 s after its arbiter is killed."""
    stop([started.process])
    deadline = time.monotonic() + 5
    for pid in workers:
        while _is_worker(pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # gunicorn workers exit within a second of their arbiter
        if _is_worker(pid):
            os.kill(pid, signal.SIGKILL)


def _is_worker(pid: int) -> bool:
    """Whether ``pid`` is still a live Frontdoor process (not a pid reused since)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z" and (b"gunicorn" in command or b"frontdoor" in command)


def place_load(bench: peers.Bench, cores: tuple[int, ...]) -> None:
    """nginx, this script and what it starts from now on (wrk, the generator) on ``cores``."""
    for pid in bench.nginx_pids:
        pin(pid, cores)
    pin(os.getpid(), cores)


# -- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """CPU counters at one instant."""

    at: float
    workers: tuple[float, ...]
    master: float
    load: float
    cores: dict[int, tuple[int, int]]


def snapshot(bench: peers.Bench, running: Running) -> Snapshot:
    """Every counter now: the workers, the arbiter, the load (nginx, finished wrk and
    generator runs, this script with its statsd sink), and each core."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return Snapshot(
        time.monotonic(),
        running.worker_cpu(),
        running.master_cpu(),
        bench.load_cpu_s() + own.ru_utime + own.ru_stime,
        peers._core_times(),
    )


def window(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """CPU shares (in cores) over the interval between two snapshots."""
    seconds = after.at - before.at
    workers = [(a - b) / seconds for a, b in zip(after.workers, before.workers, strict=True)]
    master = (after.master - before.master) / seconds
    load = (after.load - before.load) / seconds
    busy = {
        core: (after.cores[core][0] - before.cores[core][0])
        / max(1, after.cores[core][1] - before.cores[core][1])
        for core in after.cores
    }
    return {
        "seconds": round(seconds, 3),
        "worker_cpu_s": [
            round(a - b, 3) for a, b in zip(after.workers, before.workers, strict=True)
        ],
        "master_cpu_s": round(after.master - before.master, 3),
        "worker_shares": [round(share, 3) for share in workers],
        "frontdoor_cores": round(sum(workers) + master, 3),
        "master_share": round(master, 4),
        "load_cores": round(load, 3),
        "core_busy": {str(core): round(share, 3) for core, share in busy.items()},
        "other_cores": round(max(0.0, sum(busy.values()) - sum(workers) - master - load), 3),
    }


def fixed_load(
    bench: peers.Bench, running: Running, endpoint: peers.Endpoint, rate: float, seconds: float
) -> dict[str, Any]:
    """The open loop at ``rate``; CPU over the whole run (warmup included) per request sent."""
    before = snapshot(bench, running)
    report = peers.open_loop(running.port, endpoint, bench.token, rate, seconds, EXPECT)
    shares = window(before, snapshot(bench, running))
    sent = int(rate * (peers.OPEN_WARMUP_S + seconds))  # openloop.py sends this many
    errors = sum(report[k] for k in ("failed", "bad_status", "bad_body", "unfinished"))
    return {
        "rate": rate,
        "requests": sent,
        "cpu_us_per_request": sum(shares["worker_cpu_s"]) / sent * 1e6,
        "master_us_per_request": shares["master_cpu_s"] / sent * 1e6,
        "latency_ms": report["latency_ms"],
        "send_lag_ms": report["send_lag_ms"],
        "errors": errors,
        **shares,
    }


def saturation(
    bench: peers.Bench, running: Running, endpoint: peers.Endpoint, args: argparse.Namespace
) -> dict[str, Any]:
    """wrk warmup, then the measured window."""
    folder, port, token = bench.folder, running.port, bench.token
    connections = args.connections * running.config.workers
    peers.wrk(folder, port, endpoint, token, EXPECT, peers.WRK_WARMUP_S, connections)
    before = snapshot(bench, running)
    summary = peers.wrk(folder, port, endpoint, token, EXPECT, args.duration, connections)
    shares = window(before, snapshot(bench, running))
    requests = max(1, summary["requests"])
    errors = sum(summary[k] for k in ("connect", "read", "write", "status", "timeout", "bad_body"))
    return {
        "requests": summary["requests"],
        "rate": summary["requests"] / (summary["duration_us"] / 1e6),
        "connections": connections,
        "cpu_us_per_request": sum(shares["worker_cpu_s"]) / requests * 1e6,
        "master_us_per_request": shares["master_cpu_s"] / requests * 1e6,
        "latency_ms": {"p50": summary["p50_us"] / 1000, "p99": summary["p99_us"] / 1000},
        "errors": errors,
        "wrk": summary,
        **shares,
    }


def suspect_saturation(config: Config, sat: dict[str, Any]) -> bool:
    """Whether the saturation req/s was limited by something else than Frontdoor."""
    if sat["other_cores"] > SUSPECT_OTHER:
        return True
    if config.one_core:
        load_busy = max(sat["core_busy"][str(core)] for core in config.load)
        return sat["frontdoor_cores"] < SUSPECT_OWN_SHARE or load_busy > SUSPECT_LOAD_BUSY
    # Sharing the cores with the load: the machine should be full.
    return sum(sat["core_busy"].values()) < SUSPECT_OWN_SHARE * len(sat["core_busy"])


def suspect_fixed(fixed: dict[str, Any]) -> bool:
    """Whether other processes loaded the machine, or the generator sent late."""
    lag = fixed["send_lag_ms"]["p99"] or 0.0
    return fixed["other_cores"] > SUSPECT_OTHER or lag > peers.MAX_SEND_LAG_MS


#: The three measurements of a configuration: fixed load at half ``--rate`` per worker and
#: at ``--rate`` per worker (open loop), and saturation (wrk).
PHASES = ("half", "full", "sat")
FIXED = {"half": 0.5, "full": 1.0}


@dataclass
class Runs:
    """One configuration's measurements over the rounds."""

    config: Config
    phases: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {phase: [] for phase in PHASES}
    )
    rss_mb: list[float] = field(default_factory=list)

    def pick(self, phase: str) -> dict[str, Any]:
        """The round the tables show: at saturation the one with the most req/s (other
        processes can only take from it), at a fixed load the one other processes
        disturbed least (lowest ``other_cores``)."""
        if phase == "sat":
            return max(self.phases["sat"], key=lambda run: run["rate"])
        return min(self.phases[phase], key=lambda run: run["other_cores"])

    def spread(self, phase: str, key: str) -> float:
        """(max - min) / 2 / median over rounds, as a share: how much rounds differed."""
        values = [_get(run, key) for run in self.phases[phase]]
        middle = statistics.median(values)
        return (max(values) - min(values)) / 2 / middle if middle else 0.0

    def flag(self, phase: str) -> str:
        """``!``: the picked saturation round was limited by something else than Frontdoor;
        ``~``: even the picked fixed-load round was disturbed."""
        if phase == "sat":
            return "!" if suspect_saturation(self.config, self.pick(phase)) else " "
        return "~" if suspect_fixed(self.pick(phase)) else " "

    def errors(self) -> int:
        """Failed or wrong replies over every round and phase."""
        return sum(run["errors"] for phase in PHASES for run in self.phases[phase])

    def as_json(self) -> dict[str, Any]:
        """What --json writes for this configuration."""
        return {
            "name": self.config.name,
            "command": self.config.label,
            "worker_cores": [list(cores) for cores in self.config.cores],
            "load_cores": list(self.config.load),
            "fixed_load_half_rate_per_worker": self.phases["half"],
            "fixed_load_rate_per_worker": self.phases["full"],
            "saturation": self.phases["sat"],
            "rss_mb_per_worker": self.rss_mb,
        }


def _get(run: dict[str, Any], key: str) -> float:
    value: Any = run
    for part in key.split("."):
        value = value[part]
    return float(value)


def measure_once(
    config: Config,
    bench: peers.Bench,
    endpoint: peers.Endpoint,
    args: argparse.Namespace,
    runs: Runs,
    attempt: int,
) -> None:
    """Start ``config``, check it, measure every phase into ``runs``; stop it."""
    running = start(config, bench, attempt)
    try:
        place_load(bench, config.load)
        impl = peers.Impl(config.name, config.label, frontdoor=True)
        peers.verify(impl, running.port, endpoint, bench.token)
        measured = {
            phase: cleanest(
                lambda share=share: fixed_load(
                    bench, running, endpoint, args.rate * share * config.workers, args.open_duration
                ),
                args,
            )
            for phase, share in FIXED.items()
        }
        measured["sat"] = sat = cleanest(lambda: saturation(bench, running, endpoint, args), args)
        running.check_alive()
        peers.verify(impl, running.port, endpoint, bench.token)  # still right after saturation?
        rss = statistics.mean(rss_mb(pid) for pid in running.workers)
    finally:
        place_load(bench, (LOAD_CORE,))
        stop_running(running.started, running.workers)
    for phase, run in measured.items():
        runs.phases[phase].append(run)
    runs.rss_mb.append(round(rss, 1))
    errors = sum(run["errors"] for run in measured.values())
    half, full = measured["half"], measured["full"]
    print(
        f"  {config.name:20} fixed load {half['cpu_us_per_request']:5.0f} us/req at"
        f" {half['rate']:g} req/s, {full['cpu_us_per_request']:5.0f} at {full['rate']:g};"
        f"  saturation {sat['rate']:5.0f} req/s {sat['cpu_us_per_request']:5.0f} us/req"
        f"  split {_split(sat)}  other {sat['other_cores']:.2f}"
        f"  errors {errors}",
        flush=True,
    )


def cleanest(measure: Callable[[], dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """``measure()``, again (after waiting for quiet) while other processes used more than
    SUSPECT_OTHER of the machine, up to ``--retries`` times: the least disturbed attempt."""
    best = {**measure(), "attempt": 1}
    for attempt in range(2, args.retries + 2):
        if best["other_cores"] <= SUSPECT_OTHER:
            break
        wait_quiet(args.quiet_wait)
        run = {**measure(), "attempt": attempt}
        if run["other_cores"] < best["other_cores"]:
            best = run
    return best


def _split(run: dict[str, Any]) -> str:
    return "/".join(f"{share * 100:.0f}" for share in run["worker_shares"])


def wait_quiet(limit_s: float) -> float:
    """Wait up to ``limit_s`` for the machine to go idle (other processes: the checkout is
    shared); the busiest core's share over the last second."""
    deadline = time.monotonic() + limit_s
    while True:
        worst = max(peers._busy_now().values())
        if worst <= SUSPECT_OTHER or time.monotonic() >= deadline:
            return worst


# -- the tables --------------------------------------------------------------------------------


def _x(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _pm(share: float) -> str:
    return f"+-{share * 100:.0f}%"


def legend(results: list[Runs]) -> str:
    """What each configuration runs, and where."""
    lines = ["Configurations (worker cores: one entry per worker, | between workers):"]
    for runs in results:
        config = runs.config
        lines.append(
            f"  {config.name:20} {config.label:31} workers on {config.where:7} "
            f"nginx + wrk + generator on {'-'.join(map(str, config.load))}  "
            f"(RSS {statistics.median(runs.rss_mb):.0f} MB per worker)"
        )
    return "\n".join(lines)


def fixed_table(results: list[Runs], args: argparse.Namespace, endpoint: peers.Endpoint) -> str:
    """The fixed-load table: CPU per request at two rates per worker."""
    base = next((r for r in results if r.config.name == BASELINE), None)
    cells = (
        f"{'CPU us/req':>10} {'+-':>5} {'x g1':>6} {'split %':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'other':>5}  "
    )
    rounds = len(results[0].phases["full"])
    lines = [
        (
            f"Fixed load: open loop of {endpoint.method} {endpoint.path}, {args.open_duration:g} s "
            f"+ {peers.OPEN_WARMUP_S:g} s warmup; of {rounds} rounds, the least disturbed by"
            " other processes (+-: spread over rounds); CPU us/req: the workers' CPU per request"
            " sent; arb: the arbiter's"
        ),
        "|".join(
            (
                f"{'':20} ",
                f"{f' {args.rate / 2:g} req/s per worker':{len(cells) + 1}}",
                f" {args.rate:g} req/s per worker",
            )
        ),
        "|".join((f"{'configuration':20} ", f" {cells}", f" {cells}{'arb':>4} {'err':>4}")),
    ]
    flagged = False
    for runs in results:
        row = [f"{runs.config.name:20} "]
        for phase in FIXED:
            run = runs.pick(phase)
            cpu = run["cpu_us_per_request"]
            base_cpu = base.pick(phase)["cpu_us_per_request"] if base else None
            flag = runs.flag(phase)
            flagged = flagged or flag != " "
            row.append(
                f" {cpu:10.0f} {_pm(runs.spread(phase, 'cpu_us_per_request')):>5} "
                f"{_x(cpu, base_cpu):>6} {_split(run):>8} {run['latency_ms']['p50']:7.1f} "
                f"{run['latency_ms']['p99']:7.1f} {run['other_cores']:5.2f}{flag} "
            )
        row[-1] += (
            f"{runs.pick('full')['master_us_per_request']:4.0f} "
            f"{runs.errors() - sum(run['errors'] for run in runs.phases['sat']):4d}"
        )
        lines.append("|".join(row))
    if flagged:
        lines.append(
            f"~ in every round other processes used > {SUSPECT_OTHER:.0%} of a core ('other'),"
            f" or the generator sent late (send lag p99 > {peers.MAX_SEND_LAG_MS:g} ms)"
        )
    return "\n".join(lines)


def saturation_table(results: list[Runs], args: argparse.Namespace) -> str:
    """The saturation table: req/s, CPU per request and where the CPU went (top rounds)."""
    base = next((r.pick("sat") for r in results if r.config.name == BASELINE), None)
    rounds = len(results[0].phases["sat"])
    lines = [
        (
            f"Saturation: wrk {args.connections} connections per worker, {args.duration:g} s"
            f" after {peers.WRK_WARMUP_S:g} s warmup; of {rounds} rounds, the one with the most"
            " req/s (+-: spread over rounds); fd, load, other: cores used; c0, c1: % busy"
        ),
        (
            f"{'configuration':20} {'cores':>7} {'req/s':>6} {'+-':>5} {'x g1':>6} "
            f"{'CPU us/req':>10} {'+-':>5} {'x g1':>6} {'fd':>5} {'split %':>8} {'load':>5} "
            f"{'other':>5} {'c0':>4} {'c1':>4} {'p50 ms':>7} {'p99 ms':>7} {'err':>4}"
        ),
    ]
    flagged = False
    for runs in results:
        top = runs.pick("sat")
        rate, cpu = top["rate"], top["cpu_us_per_request"]
        flag = runs.flag("sat")
        flagged = flagged or flag != " "
        lines.append(
            f"{runs.config.name:20} {runs.config.where:>7} {rate:6.0f} "
            f"{_pm(runs.spread('sat', 'rate')):>5} {_x(rate, base and base['rate']):>6} "
            f"{cpu:10.0f} {_pm(runs.spread('sat', 'cpu_us_per_request')):>5} "
            f"{_x(cpu, base and base['cpu_us_per_request']):>6} {top['frontdoor_cores']:5.2f} "
            f"{_split(top):>8} {top['load_cores']:5.2f} {top['other_cores']:5.2f} "
            f"{top['core_busy']['0'] * 100:4.0f} {top['core_busy']['1'] * 100:4.0f} "
            f"{top['latency_ms']['p50']:7.1f} {top['latency_ms']['p99']:7.1f} "
            f"{sum(run['errors'] for run in runs.phases['sat']):4d} {flag}"
        )
    if flagged:
        lines.append(
            "! req/s limited by something else than Frontdoor even in the best round (workers"
            f" < {SUSPECT_OWN_SHARE:.0%} of their core, load core > {SUSPECT_LOAD_BUSY:.0%}"
            f" busy, other processes > {SUSPECT_OTHER:.0%} of a core, or the cores not full"
            " in a two-core row): its CPU us/req is the steadier number"
        )
    return "\n".join(lines)


def _cpu(runs: Runs, phase: str) -> float:
    """CPU/req of the round the tables show."""
    return float(runs.pick(phase)["cpu_us_per_request"])


def _rate(runs: Runs) -> float:
    return float(runs.pick("sat")["rate"])


def _per_core(runs: Runs) -> float:
    """Saturation req/s per core of Frontdoor CPU (arbiter included)."""
    return _rate(runs) / runs.pick("sat")["frontdoor_cores"]


def _measured(base: Runs, by_name: dict[str, Runs], args: argparse.Namespace) -> list[str]:
    """The summary's measured lines."""
    two = [by_name[n] for n in TWO_WORKER_GEVENT if n in by_name]

    def ratios(phase: str, base_phase: str | None = None) -> str:
        cpu1 = _cpu(base, base_phase or phase)
        return ", ".join(f"{_cpu(r, phase) / cpu1:.2f}x ({r.config.where})" for r in two)

    lines = []
    if two:
        lines += [
            (
                f"- measured, fixed load, the same req/s per worker: with 2 workers a request costs"
                f" the workers {ratios('full')} the CPU it costs one worker at {args.rate:g} req/s"
                f" per worker, {ratios('half')} at {args.rate / 2:g}"
            ),
            (
                f"- measured, fixed load, the same {args.rate:g} req/s in all (the issue's method):"
                f" {ratios('half', 'full')}; but one worker alone at {args.rate / 2:g} req/s costs"
                f" {_cpu(base, 'half') / _cpu(base, 'full'):.2f}x what it costs at {args.rate:g}:"
                " a less busy event loop does less per wakeup, whatever the number of workers"
            ),
            (
                f"- measured, saturation: CPU per request {ratios('sat')} (here the two workers"
                " share a core with each other or with nginx + wrk)"
            ),
        ]
    if "gevent-2-one-core" in by_name:
        r = by_name["gevent-2-one-core"]
        lines.append(
            f"- measured: 2 workers sharing core 1 serve {_rate(r) / _rate(base):.2f}x one"
            f" worker's req/s, {_per_core(r) / _per_core(base):.2f}x per core of Frontdoor CPU"
            " (two busy workers time-sharing one core: run no more workers than cores)"
        )
    for name, how in (("gevent-2-two-cores", "one per core"), ("gevent-2-floating", "unpinned")):
        if name in by_name:
            r = by_name[name]
            lines.append(
                f"- measured: 2 workers {how}, sharing both cores with nginx + wrk, serve "
                f"{_rate(r) / _rate(base):.2f}x one worker's req/s with"
                f" {r.pick('sat')['frontdoor_cores']:.2f} cores of CPU:"
                f" {_per_core(r) / _per_core(base):.2f}x its req/s per core used"
            )
    return lines


def _inferred(base: Runs, by_name: dict[str, Runs]) -> list[str]:
    """The summary's inference: from the row most like N workers on N cores (one worker per
    core), the worst of its three CPU/req ratios to a lone worker."""
    rows = [by_name[n] for n in (INFERENCE_ROW,) if n in by_name]
    rows = rows or [by_name[n] for n in TWO_WORKER_GEVENT if n in by_name]
    if not rows:
        return []
    cells = [(_cpu(base, phase) / _cpu(r, phase), phase, r) for r in rows for phase in PHASES]
    efficiency, phase, row = min(cells, key=lambda cell: cell[0])
    where = {"half": "the lighter fixed load", "full": "the fixed load", "sat": "saturation"}
    verdict = "meets" if efficiency >= REQUIRED else "misses"
    return [
        (
            f"- inferred: in {row.config.name} a request costs a worker at most"
            f" {1 / efficiency:.2f}x what it costs a lone worker at the same load per worker (its"
            f" worst cell: {where[phase]}), so N workers on N idle cores would serve"
            f" ~{efficiency:.2f} x N x one worker: this {verdict} the >= {REQUIRED} x N"
            " requirement. Assumed, and not shown by this machine: independent cores, the load"
            " generated elsewhere, connections spread evenly (see the plan in the docstring)"
        )
    ]


def summary(results: list[Runs], args: argparse.Namespace) -> str:
    """The scaling numbers, measured and inferred, in words."""
    by_name = {runs.config.name: runs for runs in results}
    base = by_name.get(BASELINE)
    if base is None:
        return f"(no summary without {BASELINE}, the baseline)"
    lines = ["Scaling of gunicorn -k gevent, against gevent-1 (one worker alone on core 1):"]
    lines += _measured(base, by_name, args)
    lines += _inferred(base, by_name)
    parts = [
        f"{label} {_cpu(r, 'full') / _cpu(base, 'full'):.2f}x CPU/req at {args.rate:g} req/s,"
        f" {_rate(r) / _rate(base):.2f}x req/s and"
        f" {_cpu(r, 'sat') / _cpu(base, 'sat'):.2f}x CPU/req at saturation"
        for label, r in (
            ("frontdoor serve:", by_name.get("serve")),
            ("-k gevent_pywsgi:", by_name.get("pywsgi-1")),
            ("-k FrontdoorWorker:", by_name.get("lean-1")),
        )
        if r
    ]
    if parts:
        lines.append(f"- one process on core 1 against -k gevent: {'; '.join(parts)}")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------


def _check_tools() -> None:
    peers._check_tools()
    if not Path(GUNICORN).exists():
        raise peers.BenchmarkError(f"no {GUNICORN}: .venv/bin/pip install -e '.[gunicorn]'")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate", type=float, default=250.0, help="fixed-load req/s per worker (and half that)"
    )
    parser.add_argument(
        "--open-duration", type=float, default=5.0, help="fixed-load measured seconds"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="wrk measured seconds")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections per worker")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every configuration")
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="measurements repeated while other processes disturbed them (kept: the cleanest)",
    )
    parser.add_argument("--endpoint", default="play", choices=("play", "home"))
    parser.add_argument(
        "--only",
        help=f"comma-separated configurations, of: {', '.join(CONFIGS)}"
        f" (default: {', '.join(DEFAULT)})",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=15.0,
        help="seconds to wait, before each configuration, for other processes to leave the"
        " cores idle (0: do not wait)",
    )
    parser.add_argument("--json", metavar="OUT", help="write every number as JSON")
    args = parser.parse_args()
    if not (1 <= args.duration <= 60 and 1 <= args.open_duration <= 60):
        parser.error("--duration and --open-duration: 1 to 60 s")
    if not (1 <= args.rate <= 1000 and 1 <= args.rounds <= 10 and 2 <= args.connections <= 1000):
        parser.error("--rate 1 to 1000, --rounds 1 to 10, --connections 2 to 1000")
    if not (0 <= args.quiet_wait <= 120 and 0 <= args.retries <= 5):
        parser.error("--quiet-wait: 0 to 120 s; --retries: 0 to 5")
    names = args.only.split(",") if args.only else list(DEFAULT)
    unknown = [name for name in names if name not in CONFIGS]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    args.configs = [CONFIGS[name] for name in names]
    return args


def _attempt(
    config: Config,
    bench: peers.Bench,
    endpoint: peers.Endpoint,
    args: argparse.Namespace,
    runs: Runs,
    number: int,
) -> None:
    """measure_once, retried once a minute later if the server did not start (an edit to
    the code may be in progress on a shared checkout)."""
    try:
        measure_once(config, bench, endpoint, args, runs, number)
    except peers.BenchmarkError as exc:
        if "did not start" not in str(exc):
            raise
        print(f"  {config.name}: did not start; retrying in 60 s\n{exc}", flush=True)
        time.sleep(60)  # someone may be mid-edit in the checkout: give them a minute
        measure_once(config, bench, endpoint, args, runs, number + 1000)


def run(args: argparse.Namespace, folder: Path) -> list[Runs]:
    """nginx up, then every configuration once per round, in a rotated order."""
    endpoint = peers._endpoints(peers._bodies())[args.endpoint]
    results = {config.name: Runs(config) for config in args.configs}
    with peers.backends(args, folder, [endpoint]) as bench:
        for number in range(args.rounds):
            shift = number % len(args.configs)
            order = args.configs[shift:] + args.configs[:shift]
            print(f"round {number + 1}/{args.rounds}", flush=True)
            for config in order:
                busy = wait_quiet(args.quiet_wait) if args.quiet_wait else 0.0
                if busy > SUSPECT_OTHER:
                    print(f"  (the machine is not idle: a core {busy:.0%} busy)", flush=True)
                _attempt(config, bench, endpoint, args, results[config.name], number)
    return list(results.values())


def main() -> int:
    """Run every configuration, print the tables and the summary."""
    args = _parse_args()
    os.sched_setaffinity(0, {LOAD_CORE})  # nginx, wrk and the generator inherit core 0
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="frontdoor-scaling-"))
    try:
        _check_tools()
        busy = peers._busy_now()
        shares = ", ".join(f"core {core} {share:.0%}" for core, share in sorted(busy.items()))
        print(f"before starting: {shares} busy (other processes); logs in {folder}", flush=True)
        results = run(args, folder)
    except peers.BenchmarkError as exc:
        print(f"scaling: aborted: {exc}", file=sys.stderr)
        print(f"scaling: logs kept in {folder}", file=sys.stderr)
        return 1
    endpoint = peers._endpoints(peers._bodies())[args.endpoint]
    print()
    print(legend(results))
    print()
    print(fixed_table(results, args, endpoint))
    print()
    print(saturation_table(results, args))
    print()
    print(summary(results, args))
    print(f"\ntook {time.monotonic() - started:.0f} s")
    if args.json:
        document = {
            "args": {
                "rate": args.rate,
                "open_duration_s": args.open_duration,
                "duration_s": args.duration,
                "connections": args.connections,
                "rounds": args.rounds,
                "endpoint": args.endpoint,
                "quiet_wait_s": args.quiet_wait,
                "retries": args.retries,
            },
            "results": [runs.as_json() for runs in results],
        }
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    failed = sum(runs.errors() for runs in results)
    if failed:
        print(f"scaling: {failed} failed or wrong replies; logs kept in {folder}")
        return 1
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
