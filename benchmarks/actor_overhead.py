"""Actor-path cost: one request through a RequestSupervisor and backend actors, versus the
same backend calls made from plain greenlets, against a fast local HTTP backend.

The plan is home-shaped: a -> (b || c) -> d, four HTTP calls with one level of parallelism.
Requests run one at a time, so each figure is the per-request latency of that path; the
difference between the two is what the actors cost (supervisor start/stop, Call/Reply
messages, bulkhead bookkeeping). Prints one table and the median ratio over several runs.

    .venv/bin/python benchmarks/actor_overhead.py [--requests 2000] [--runs 5]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from actors.plan import Plan, Step, StepContext  # noqa: E402
from actors.system import ActorSystem  # noqa: E402
from backends.client import BackendClient  # noqa: E402
from backends.specs import BackendSpec  # noqa: E402
from backends.transport import get  # noqa: E402
from backends.transports import make_transport  # noqa: E402
from orchestrator.frontend.httpserver import NoDelayWSGIServer  # noqa: E402

BODY = b'{"ok":true,"items":[1,2,3]}'


def _backend(_environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]


def _compose(ctx: StepContext) -> dict[str, Any]:
    return dict(ctx.results)


PLAN = Plan(
    (
        Step("a", "a", lambda _c: get("a")),
        Step("b", "b", lambda _c: get("b"), after=("a",)),
        Step("c", "c", lambda _c: get("c"), after=("a",)),
        Step("d", "d", lambda _c: get("d"), after=("b", "c")),
    ),
    _compose,
)


def _plain(clients: dict[str, BackendClient], deadline: float) -> None:
    def call(name: str) -> Any:
        return clients[name].call(get(name), deadline=deadline, request_id="bench")

    call("a")
    b, c = gevent.spawn(call, "b"), gevent.spawn(call, "c")
    gevent.joinall([b, c], raise_error=True)
    call("d")


def _time_per_request(fn: Callable[[], None], requests: int) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        fn()
    return (time.perf_counter() - start) / requests * 1e6


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    server = NoDelayWSGIServer(("127.0.0.1", 0), _backend, log=None)
    server.start()
    base = f"http://127.0.0.1:{server.server_port}"
    specs = [BackendSpec(n, f"{base}/{n}", timeout_ms=2000) for n in "abcd"]
    clients = {s.name: BackendClient(s, make_transport(s)) for s in specs}
    system = ActorSystem(specs, lambda s: clients[s.name])
    system.start()

    def actor_path() -> None:
        result = system.execute(
            PLAN, params={}, member_id=None, deadline=time.monotonic() + 2, request_id="bench"
        )
        assert result.body is not None  # noqa: S101 - a benchmark sanity check

    def plain_path() -> None:
        _plain(clients, time.monotonic() + 2)

    _time_per_request(actor_path, 200)  # warm up connections and code paths
    _time_per_request(plain_path, 200)
    plain_runs, actor_runs = [], []
    for _ in range(args.runs):
        plain_runs.append(_time_per_request(plain_path, args.requests))
        actor_runs.append(_time_per_request(actor_path, args.requests))
    system.stop()
    server.stop()

    plain, actor = statistics.median(plain_runs), statistics.median(actor_runs)
    print(f"actor-path overhead: {args.requests} requests x {args.runs} runs, 4 HTTP calls each")
    print(f"{'path':<28}{'median us/request':>20}{'min':>10}{'max':>10}")
    for label, median, runs in (
        ("plain greenlets", plain, plain_runs),
        ("supervisor + backend actors", actor, actor_runs),
    ):
        print(f"{label:<28}{median:>20.0f}{min(runs):>10.0f}{max(runs):>10.0f}")
    print(f"{'ratio (actor / plain)':<28}{actor / plain:>20.2f}")
    print(f"{'actor cost per request':<28}{actor - plain:>20.0f} us")


if __name__ == "__main__":
    main()
