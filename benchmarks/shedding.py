"""Load shedding: what a shed request costs, and what admitted requests keep, at 2x capacity.

Frontdoor runs in its own process (pinned to core 1) with a small in-flight bound
(``--max-inflight``, i.e. ``FRONTDOOR_SERVER_MAX_INFLIGHT``); the simulated services (core 0)
answer its one backend call (``GET /v1/nonmember/plans``: the ``plans`` service) after a fixed
``--latency-ms``. So capacity is known: ``max_inflight / latency`` requests a second. An
open-loop generator (core 0, this process) offers half of it, then twice it, and measures
from each request's scheduled send time (no coordinated omission):

- shed: 503 ``overloaded`` answers (``Retry-After``), which must take < 5 ms (the issue's
  target; docs/failures.md F7 allows 10 ms);
- admitted: 2xx answers, whose p99 at 2x should stay within 1.5x of it at half capacity,
  with goodput near capacity.

Bounded: about 20 s in all, at most ``--max-inflight-client`` requests outstanding, 127.0.0.1
only.

    .venv/bin/python benchmarks/shedding.py [--max-inflight 5] [--latency-ms 50] [--step-s 8]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
from _processes import BACKENDS_MAIN, PYTHON, free_port, spawn, wait_listening  # noqa: E402

from orchestrator.loadtest.client import HttpClient, RequestError, Response  # noqa: E402
from orchestrator.loadtest.histogram import LatencyHistogram  # noqa: E402
from orchestrator.loadtest.target import Target  # noqa: E402

PATH = "/v1/nonmember/plans?country=US"
HTTP_OK = 200
HTTP_UNAVAILABLE = 503


def _add_latency(backends_port: int, latency_ms: float) -> None:
    """Every reply of the ``plans`` service takes ``latency_ms`` (the profile adds nothing)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{backends_port}/_faults/plans",
        data=json.dumps({"latency_ms": latency_ms}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
        reply.read()


@dataclass
class Phase:
    """One offered rate's results (requests scheduled after its warmup only)."""

    name: str
    rate: float
    measured_s: float
    admitted: LatencyHistogram = field(default_factory=LatencyHistogram)
    shed: LatencyHistogram = field(default_factory=LatencyHistogram)
    #: Shed answers timed from the moment the request was actually sent: Frontdoor's own
    #: cost, without the generator's lateness.
    shed_from_send: LatencyHistogram = field(default_factory=LatencyHistogram)
    shed_with_retry_after: int = 0
    other: Counter[str] = field(default_factory=Counter)
    unsent: int = 0
    send_lag: LatencyHistogram = field(default_factory=LatencyHistogram)

    def record(self, response: Response, latency_s: float, since_send_s: float) -> None:
        """One answer: admitted (2xx), shed (503 ``overloaded``) or anything else."""
        if response.status == HTTP_OK:
            self.admitted.record(latency_s)
        elif response.status == HTTP_UNAVAILABLE and b'"overloaded"' in response.body:
            self.shed.record(latency_s)
            self.shed_from_send.record(since_send_s)
            self.shed_with_retry_after += response.retry_after_s is not None
        else:
            self.other[str(response.status)] += 1


def _run_phase(client: HttpClient, phase: Phase, warmup_s: float, bound: int) -> None:
    """Offer ``phase.rate`` for ``warmup_s + phase.measured_s`` seconds, open loop."""
    payload = client.encode("GET", PATH, [("Accept", "application/json")])
    pool = gevent.pool.Pool(bound)
    interval = 1.0 / phase.rate
    total = int(phase.rate * (warmup_s + phase.measured_s))
    start = time.monotonic()

    def one(scheduled: float, measured: bool) -> None:
        sent = time.monotonic()
        try:
            response = client.send(payload)
        except RequestError as exc:
            if measured:
                phase.other[str(exc.kind)] += 1
            return
        if measured:
            done = time.monotonic()
            phase.record(response, done - scheduled, done - sent)

    for index in range(total):
        scheduled = start + index * interval
        wait = scheduled - time.monotonic()
        if wait > 0:
            gevent.sleep(wait)  # the generator's pacing
        measured = index * interval >= warmup_s
        if pool.full():
            phase.unsent += measured  # never queue behind the bound: count it
            continue
        if measured:
            phase.send_lag.record(max(0.0, time.monotonic() - scheduled))
        pool.spawn(one, scheduled, measured)
    pool.join(timeout=client.timeout_s + 1)
    pool.kill()


def _cells(histogram: LatencyHistogram) -> str:
    if histogram.count == 0:
        return f"{'-':>8} {'-':>8} {'-':>8}"
    return (
        f"{histogram.percentile_ms(50):8.2f} {histogram.percentile_ms(99):8.2f} "
        f"{histogram.max_ms():8.2f}"
    )


def _print(phases: list[Phase], capacity: float, args: argparse.Namespace) -> None:
    print(
        f"load shedding: max_inflight={args.max_inflight}, plans +{args.latency_ms:g} ms -> "
        f"capacity {capacity:.0f} req/s; {args.step_s:g} s per rate after {args.warmup_s:g} s "
        "warmup; latency in ms from the scheduled send time"
    )
    print(
        f"{'phase':<10}{'offered':>8}{'ok/s':>7}{'shed/s':>7}{'other':>6}{'unsent':>7}"
        f"  {'admitted p50':>12} {'p99':>8} {'max':>8}  {'shed p50':>8} {'p99':>8} {'max':>8}"
    )
    for phase in phases:
        other = sum(phase.other.values())
        print(
            f"{phase.name:<10}{phase.rate:8.0f}{phase.admitted.count / phase.measured_s:7.1f}"
            f"{phase.shed.count / phase.measured_s:7.1f}{other:6d}{phase.unsent:7d}"
            f"  {_cells(phase.admitted).lstrip():>30}  {_cells(phase.shed)}"
        )
    half, double = phases
    ratio = double.admitted.percentile_ms(99) / max(half.admitted.percentile_ms(99), 1e-9)
    goodput = double.admitted.count / double.measured_s / capacity
    retry_after = f"{double.shed_with_retry_after}/{double.shed.count}"
    lag = max(phase.send_lag.percentile_ms(99) for phase in phases)
    print(
        f"at 2x: goodput {goodput * 100:.0f}% of capacity; admitted p99 {ratio:.2f}x its value "
        f"at half capacity; shed with Retry-After {retry_after}; other: "
        f"{dict(double.other) or 'none'}; generator send lag p99 {lag:.2f} ms"
    )
    print(f"at 2x, shed timed from the actual send: p50/p99/max {_cells(double.shed_from_send)}")


def main() -> None:
    """Start the services and Frontdoor, offer half then twice capacity, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-inflight", type=int, default=5, help="Frontdoor's bound")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the backend's latency")
    parser.add_argument("--step-s", type=float, default=8.0, help="measured seconds per rate")
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--max-inflight-client", type=int, default=256)
    args = parser.parse_args()
    if not 1 <= args.step_s + args.warmup_s <= 30:  # keep the run bounded
        parser.error("step + warmup must be between 1 and 30 s")
    capacity = args.max_inflight / (args.latency_ms / 1000.0)
    os.sched_setaffinity(0, {0})  # the generator and the services on core 0
    env = dict(os.environ, FRONTDOOR_STATSD_ENABLED="false", FRONTDOOR_LOGGING_LEVEL="WARNING")
    children: list[subprocess.Popen[bytes]] = []
    client: HttpClient | None = None
    try:
        backends_port, port = free_port(), free_port()
        children.append(
            spawn(
                [PYTHON, "-c", BACKENDS_MAIN,
                 "serve", "--port", str(backends_port), "--latency-profile", "none"],
                core=0, env=env,
            )
        )  # fmt: skip
        wait_listening(backends_port)
        _add_latency(backends_port, args.latency_ms)
        env.update(
            FRONTDOOR_BACKENDS_BASE_URL=f"http://127.0.0.1:{backends_port}",
            FRONTDOOR_SERVER_MAX_INFLIGHT=str(args.max_inflight),
            FRONTDOOR_AUTH_DEMO="true",  # --no-embedded: the demo secrets only by opt-in
            # One address stands for every client here: measure the bound alone, without
            # per-client limits or the headroom fair admission keeps for other clients.
            FRONTDOOR_LIMITS_ENABLED="false",
        )
        children.append(
            spawn(
                [str(Path(PYTHON).with_name("frontdoor")), "serve", "--no-embedded",
                 "--port", str(port)],
                core=1, env=env,
            )
        )  # fmt: skip
        wait_listening(port)
        client = HttpClient(Target("127.0.0.1", port), timeout_s=5.0)
        phases = [
            Phase("half", capacity / 2, args.step_s),
            Phase("2x", capacity * 2, args.step_s),
        ]
        for phase in phases:
            _run_phase(client, phase, args.warmup_s, args.max_inflight_client)
        _print(phases, capacity, args)
    finally:
        if client is not None:
            client.close()
        for child in reversed(children):
            child.terminate()
            child.wait(timeout=10)


if __name__ == "__main__":
    main()
