"""What per-client rate limits and fair admission add to a request's CPU, in-process.

One process, no sockets (like ``benchmarks/hot_path.py``): best of ``--runs`` runs of
``--number`` calls, CPU time. Rows: the pieces alone (a token bucket charge; admission's
enter and leave, counted per client or not) and a whole request through the WSGI app
(routing, auth, limits, body, admission, a plan over an in-process fake backend, the
response), with ``limits.enabled`` true and false. Run with ``PYTHONPATH`` at an older
checkout to get its whole-request rows (the pieces it lacks are skipped).

    .venv/bin/python benchmarks/limits_cost.py [--number 5000] [--runs 5]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from _inprocess import PLANS, best_us  # noqa: E402

from orchestrator.testkit import PackageHarness  # noqa: E402

_BACKENDS = (
    *("subscriber", "device", "playback", "licensing", "history", "catalog"),
    *("eligibility", "accounts", "billing", "trial", "plans", "bookmarks"),
)


def _harness(enabled: bool) -> PackageHarness:
    handlers: dict[str, Any] = dict.fromkeys(_BACKENDS, lambda _request: {"position_s": 60})
    handlers["plans"] = lambda _request: PLANS
    return PackageHarness(
        ["orchestrator.apis.nonmember", "orchestrator.apis.playback"],
        handlers,
        environ={
            "FRONTDOOR_LIMITS_ENABLED": "true" if enabled else "false",
            "FRONTDOOR_LIMITS_MEMBER_RATE": "1e9",
            "FRONTDOOR_LIMITS_ADDRESS_RATE": "1e9",
            "FRONTDOOR_LOGGING_LEVEL": "WARNING",
        },
    )


def _requests(harness: PackageHarness) -> dict[str, Callable[[], Any]]:
    app = harness.frontdoor.app
    token = harness.frontdoor.signer.issue("m1")
    heartbeat = json.dumps({"title_id": "t42", "position_s": 60}).encode()

    def plans() -> Any:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/v1/nonmember/plans",
            "QUERY_STRING": "country=US",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(),
        }
        return b"".join(app(environ, lambda _s, _h: None))

    def beat() -> Any:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/v1/playback/heartbeat",
            "QUERY_STRING": "",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(heartbeat)),
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "wsgi.input": io.BytesIO(heartbeat),
        }
        return b"".join(app(environ, lambda _s, _h: None))

    return {"GET plans (public: address bucket)": plans, "POST heartbeat (member)": beat}


def _pieces(number: int, runs: int) -> list[tuple[str, float]]:
    try:
        from orchestrator.frontend.ratelimit import Policy, RateLimiter
    except ImportError:
        return []
    from orchestrator.frontend.admission import Admission

    limiter = RateLimiter(Policy("member", 1e9, 60), Policy("address", 1e9, 500))
    fair, plain = Admission(32), Admission(32, fair=False)
    client = ("member", "m1")

    def fair_once() -> None:
        fair.try_enter(client)
        fair.leave(client)

    def plain_once() -> None:
        plain.try_enter()
        plain.leave()

    return [
        (
            "rate limit charge (member)",
            best_us(lambda: limiter.charge("m1", "10.0.0.1"), number, runs),
        ),
        ("admission enter + leave, per client", best_us(fair_once, number, runs)),
        ("admission enter + leave, no client", best_us(plain_once, number, runs)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--number", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = [(name, us) for name, us in _pieces(args.number * 20, args.runs)]
    for enabled in (True, False):
        with _harness(enabled) as harness:
            for name, request in _requests(harness).items():
                request()  # warm: token remembered, connections and caches made
                label = f"{name}, limits {'on' if enabled else 'off'}"
                rows.append((label, best_us(request, args.number, args.runs)))
    width = max(len(name) for name, _ in rows)
    print(f"{'what':<{width}}  µs CPU")
    for name, us in rows:
        print(f"{name:<{width}}  {us:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
