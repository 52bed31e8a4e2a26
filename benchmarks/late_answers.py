"""When a saturated process answers a request that cannot finish by its deadline, in-process.

One process, no sockets: an actor system over an in-process fake backend (each call 20 ms),
``--requests`` plans with an 800 ms deadline started together, while ``--hogs`` greenlets
burn the CPU in ``--slice-ms`` slices between yields (the process is saturated: a greenlet
that becomes ready waits about hogs x slice to run). Reports when each request got its
answer relative to its deadline, how the runs ended, and how many ERROR and WARNING lines
``actors.supervisor`` wrote. Bounded: the hogs stop when the last request answered, or
after ``--limit-s``. Run with ``PYTHONPATH`` at an older checkout for its numbers.

    .venv/bin/python benchmarks/late_answers.py [--requests 50] [--hogs 40] [--slice-ms 15]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import logging  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from actors.plan import Plan, Step, StepContext  # noqa: E402
from actors.supervisor import execute_plan  # noqa: E402
from actors.testing import system_over  # noqa: E402
from backends.testing import FakeBackend  # noqa: E402
from backends.transport import BackendRequest, get  # noqa: E402

DEADLINE_S = 0.8


class _Counting(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.levels: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.levels[record.levelname] += 1


def _slow(_request: BackendRequest) -> object:
    gevent.sleep(0.02)
    return {"ok": True}


def _compose(ctx: StepContext) -> Any:
    return dict(ctx.results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--hogs", type=int, default=40)
    parser.add_argument("--slice-ms", type=float, default=15.0)
    parser.add_argument("--limit-s", type=float, default=30.0)
    args = parser.parse_args()
    counting = _Counting()
    logging.getLogger("actors.supervisor").addHandler(counting)
    logging.getLogger("actors.supervisor").propagate = False

    fakes = [FakeBackend("a", _slow), FakeBackend("b", _slow)]
    # Bulkheads wide enough for every request: what is measured is the CPU, not a refusal.
    system = system_over(fakes, clock=time.monotonic, max_concurrent=256, max_queue=256)
    system.start()
    plan = Plan(
        (
            Step("a", "a", lambda _c: get("a")),
            Step("b", "b", lambda _c: get("b"), after=("a",)),
        ),
        _compose,
    )
    done = gevent.event.Event()
    stop_at = time.monotonic() + args.limit_s

    def hog() -> None:
        while not done.is_set() and time.monotonic() < stop_at:
            until = time.perf_counter() + args.slice_ms / 1000
            while time.perf_counter() < until:
                pass
            gevent.sleep(0)

    def request(index: int) -> tuple[float, str]:
        deadline = time.monotonic() + DEADLINE_S
        result = execute_plan(
            plan,
            directory=system,
            params={},
            member_id="m1",
            deadline=deadline,
            request_id=f"late-{index}",
            clock=time.monotonic,
        )
        return (time.monotonic() - deadline) * 1000, result.status.value

    hogs = [gevent.spawn(hog) for _ in range(args.hogs)]
    requests = [gevent.spawn(request, index) for index in range(args.requests)]
    gevent.joinall(requests, timeout=args.limit_s)
    done.set()
    gevent.joinall(hogs, timeout=args.limit_s)
    system.stop()
    answered = [g.value for g in requests if g.successful()]
    late_ms = sorted(ms for ms, _status in answered)
    statuses = Counter(status for _ms, status in answered)
    wait_ms = args.hogs * args.slice_ms
    print(
        f"{args.requests} requests, deadline {DEADLINE_S * 1000:.0f} ms, {args.hogs} hogs x "
        f"{args.slice_ms:.0f} ms slices (a ready greenlet waits ~{wait_ms:.0f} ms)"
    )
    if late_ms:
        p99 = late_ms[min(len(late_ms) - 1, int(len(late_ms) * 0.99))]
        print(
            f"answered past the deadline (ms): p50 {statistics.median(late_ms):.0f}, "
            f"p99 {p99:.0f}, max {late_ms[-1]:.0f}"
        )
    print(f"outcomes: {dict(statuses)}; unanswered: {args.requests - len(answered)}")
    print(f"actors.supervisor log lines: {dict(counting.levels)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
