"""Where a request's CPU goes: Frontdoor under saturation, sampled by py-spy, by category.

Frontdoor runs exactly as in ``benchmarks/peers.py`` (one process on core 1, every
mechanism on, nginx backends with fixed delays on core 0, wrk with 64 keep-alive
connections). Two windows per endpoint:

1. measured: CPU per request from /proc (no profiler attached);
2. sampled: py-spy records Frontdoor's Python stacks (``--rate`` per second) while wrk
   keeps it saturated; idle samples (the process waiting in the kernel) are left out.

Each sample is charged to one category: that of the innermost frame of the sampled stack
that belongs to one (``CATEGORIES``), so JSON decoding inside the backend client counts
as JSON, socket reads inside the transport as the transport, a request builder called by
the supervisor as composition, a mailbox put as the actor runtime. A category's µs per
request is its share of the samples times the measured CPU per request. Sampling error is
about 1/sqrt(samples) of a share. ``--detail N`` lists each category's N busiest frames.

    .venv/bin/python benchmarks/breakdown.py [--endpoints play,home] [--duration 10]

Needs py-spy (``.venv/bin/pip install py-spy``) and what benchmarks/peers.py needs.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import peers
from _processes import cpu_s, stop

#: (category, fragments of its frames: file paths or function names). A sample is charged
#: to the category of the innermost frame that matches one; frames of generic code
#: (gevent's sockets and queues, contextlib, dataclasses...) match none, so their cost goes
#: to the code that called them. py-spy prints paths relative to their sys.path entry
#: (``gevent/pywsgi.py``, ``orchestrator/frontend/app.py``).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("access log", ("orchestrator/ops/access_log.py", "logging/__init__.py")),
    ("metrics (statsd)", ("orchestrator/ops/metrics.py", "statsd/")),
    ("JSON decode and encode", ("json/", "_decode_json (", "json_body.py", "encode_json (")),
    (
        "backend transport (HTTP client, sockets)",
        ("gevent_transport.py", "requests_transport.py", "requests/", "urllib3/"),
    ),
    ("backend client (budget, headers, status)", ("backends/client.py",)),
    ("composition and request builders (team code)", ("orchestrator/apis/",)),
    ("supervisor and plan run", ("actors/supervisor.py", "actors/plan.py", "call_cache.py")),
    (
        "backend actors (bulkhead, breaker, retries, windows)",
        (
            "actors/backend.py",
            "actors/breaker.py",
            "actors/bulkhead.py",
            "actors/retry.py",
            "actors/stats.py",
            "actors/last_good.py",
            "actors/system.py",
        ),
    ),
    ("actor runtime (pykka mailboxes, messages)", ("pykka/", "actors/runtime.py")),
    (
        "routing, auth, parameters, fields",
        (
            "orchestrator/frontend/auth.py",
            "orchestrator/frontend/protocol/",
            "orchestrator/plans.py",
            "orchestrator/frontend/problems.py",
            "orchestrator/frontend/admission.py",
        ),
    ),
    (
        "request glue (app, server, admin windows)",
        (
            "orchestrator/frontend/app.py",
            "orchestrator/frontend/server.py",
            "orchestrator/ops/admin.py",
        ),
    ),
    (
        "HTTP server (pywsgi: parse, environ, write)",
        ("gevent/pywsgi.py", "httpserver.py", "gevent/baseserver.py"),
    ),
)
LOOP = "event loop and greenlet switches (gevent hub)"
OTHER = "other (interpreter, unattributed)"


def categorize(stack: str) -> tuple[str, str]:
    """The category of one sampled stack (py-spy's ``root;...;leaf`` frames), and the
    innermost frame that decided it (the leaf when none did; for ``--detail``)."""
    frames = stack.split(";")
    for frame in reversed(frames):
        for name, fragments in CATEGORIES:
            if any(fragment in frame for fragment in fragments):
                return name, frame
    return (LOOP if "gevent/" in stack else OTHER), frames[-1]


#: Stacks of threads other than the serving one: gevent's thread-pool workers waiting for
#: work (the resolver's). py-spy cannot tell that wait from work; it costs no CPU.
IGNORED = ("gevent/_threading.py",)


def _samples(raw: Path) -> tuple[collections.Counter[str], collections.Counter[tuple[str, str]]]:
    counts: collections.Counter[str] = collections.Counter()
    frames: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and not any(part in stack for part in IGNORED):
            category, frame = categorize(stack)
            counts[category] += int(count)
            frames[category, frame] += int(count)
    return counts, frames


def _profile(
    bench: peers.Bench, endpoint: peers.Endpoint, args: argparse.Namespace, pyspy: str
) -> tuple[float, float, collections.Counter[str], collections.Counter[tuple[str, str]]]:
    started, port = peers.start_impl(peers.IMPLS["frontdoor"], bench)
    folder, token, conns = bench.folder, bench.token, args.connections
    try:
        peers.verify(peers.IMPLS["frontdoor"], port, endpoint, token)
        peers.wrk(folder, port, endpoint, token, "frontdoor", 2, conns)
        before = cpu_s(started.process.pid)
        summary = peers.wrk(folder, port, endpoint, token, "frontdoor", args.duration, conns)
        cpu_us = (cpu_s(started.process.pid) - before) / max(1, summary["requests"]) * 1e6
        rate = summary["requests"] / (summary["duration_us"] / 1e6)
        raw = folder / f"{endpoint.name}.pyspy.txt"
        recorder = subprocess.Popen(  # noqa: S603 - py-spy on our own child process
            [pyspy, "record", "--pid", str(started.process.pid), "--rate", str(args.rate),
             "--duration", str(round(args.duration)), "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=(folder / "py-spy.log").open("wb"),
        )  # fmt: skip
        time.sleep(0.5)  # py-spy attaches before the load starts; nothing to wait on instead
        peers.wrk(folder, port, endpoint, token, "frontdoor", args.duration, conns)
        recorder.wait(timeout=args.duration + 30)
        return cpu_us, rate, *_samples(raw)
    finally:
        stop([started.process])


def main() -> int:
    """Profile each endpoint and print the breakdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", default="play,home", help="play, home or play,home")
    parser.add_argument("--duration", type=int, default=10, help="seconds per window")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--detail", type=int, default=0, help="busiest frames per category")
    args = parser.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(peers.PYTHON).with_name("py-spy"))
    if not Path(pyspy).exists():
        parser.error("py-spy not found: .venv/bin/pip install py-spy")
    os.sched_setaffinity(0, {peers.LOAD_CORE})
    folder = Path(tempfile.mkdtemp(prefix="frontdoor-breakdown-"))
    names = args.endpoints.split(",")
    endpoints = [peers._endpoints(peers._bodies())[name] for name in names]  # noqa: SLF001
    with peers.backends(args, folder, endpoints) as bench:
        for endpoint in endpoints:
            cpu_us, rate, counts, frames = _profile(bench, endpoint, args, pyspy)
            total = sum(counts.values())
            print(
                f"\n{endpoint.method} {endpoint.path}: {rate:.0f} req/s at saturation, "
                f"{cpu_us:.0f} us of CPU per request, {total} samples"
            )
            print(f"{'category':56} {'share':>6} {'us/req':>7}")
            for name, count in counts.most_common():
                share = count / max(1, total)
                print(f"{name:56} {share:6.1%} {share * cpu_us:7.0f}")
                busiest = [(f, n) for (c, f), n in frames.most_common() if c == name]
                for frame, samples in busiest[: args.detail]:
                    print(f"    {samples / max(1, total) * cpu_us:5.0f}  {frame[:90]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
