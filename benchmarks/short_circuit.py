"""Short-circuit cost: what a call to a backend whose breaker is open costs, through the actor.

Three figures, each the median over several runs:
- round trip: one call at a time, ``submit`` -> backend actor -> ``SHORT_CIRCUITED`` reply
  in the caller's inbox (two greenlet switches and the actor's breaker check);
- pipelined: many calls submitted at once, per call (the actor's own cost);
- request: a whole one-step plan through a RequestSupervisor, the step short-circuiting
  into its fallback (what a device request pays when its backend is open).

No backend is ever called: the breaker is forced open before the runs.

    .venv/bin/python benchmarks/short_circuit.py [--calls 20000] [--runs 5]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

from actors.breaker import Override  # noqa: E402
from actors.messages import Call, Outcome  # noqa: E402
from actors.plan import Fallback, Plan, Step  # noqa: E402
from actors.system import ActorSystem  # noqa: E402
from actors.testing import Inbox  # noqa: E402
from backends.specs import BackendSpec  # noqa: E402
from backends.testing import FakeBackend  # noqa: E402
from backends.transport import get  # noqa: E402

REQUEST = get("titles", "t5")
PLAN = Plan(
    (Step("s", "x", lambda _c: REQUEST, fallback=Fallback.static({"fallback": True})),),
    lambda c: c.results["s"],
)


def _per_call_us(fn: Callable[[int], None], calls: int) -> float:
    start = time.perf_counter()
    fn(calls)
    return (time.perf_counter() - start) / calls * 1e6


class _Bench:
    """One backend whose breaker is forced open, and the three ways of calling it."""

    def __init__(self) -> None:
        spec = BackendSpec("x", "http://127.0.0.1:1/x", max_concurrent=10, max_queue=100_000)
        self.fake = FakeBackend("x")
        self.system = ActorSystem([spec], lambda _spec: self.fake)
        self.system.start()
        self.system.force_breaker("x", Override.FORCE_OPEN)
        self.inbox = Inbox()

    def _call(self, call_id: int) -> Call:
        now = time.monotonic()
        return Call(call_id, "x", REQUEST, now + 5.0, "bench", self.inbox, now)

    def round_trip(self, calls: int) -> None:
        """One call at a time, waiting for each reply."""
        for index in range(calls):
            self.system.submit(self._call(index))
            assert self.inbox.next().outcome is Outcome.SHORT_CIRCUITED  # noqa: S101 - sanity

    def pipelined(self, calls: int) -> None:
        """Batches of calls submitted at once, then their replies collected."""
        batch = 1_000  # stays under the backend's capacity
        for first in range(0, calls, batch):
            for index in range(first, first + batch):
                self.system.submit(self._call(index))
            for _ in range(batch):
                self.inbox.next()

    def request(self, calls: int) -> None:
        """Whole one-step requests through a supervisor, falling back."""
        for _ in range(calls):
            result = self.system.execute(
                PLAN, params={}, member_id=None, deadline=time.monotonic() + 5, request_id="b"
            )
            assert result.degraded == ("s",)  # noqa: S101 - sanity check


def main() -> None:
    """Run the three measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    bench = _Bench()
    rows = []
    for label, fn, calls in (
        ("round trip (submit -> reply)", bench.round_trip, args.calls),
        ("pipelined, per call", bench.pipelined, args.calls),
        ("one-step request, fallback", bench.request, max(1, args.calls // 10)),
    ):
        fn(min(calls, 1_000))  # warm up
        runs = [_per_call_us(fn, calls) for _ in range(args.runs)]
        rows.append((label, statistics.median(runs), min(runs), max(runs)))
    bench.system.stop()
    assert bench.fake.calls == 0  # noqa: S101 - the open breaker let nothing through

    print(f"short-circuit cost, breaker open: {args.calls} calls x {args.runs} runs")
    print(f"{'path':<32}{'median us':>12}{'min':>10}{'max':>10}")
    for label, median, low, high in rows:
        print(f"{label:<32}{median:>12.1f}{low:>10.1f}{high:>10.1f}")


if __name__ == "__main__":
    main()
