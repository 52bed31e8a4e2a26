"""What the request id choice and gunicorn's drain counting add to a request's CPU, in-process.

One process, no sockets (like ``benchmarks/hot_path.py``): best of ``--runs`` runs of
``--number`` calls, CPU time. Rows: ``arrive`` (a request's id: made here, a device's kept
with a fresh one for backends, a device's trusted), the ``DrainableApp`` wrapper the gunicorn
target serves (around a trivial WSGI app, beside the bare app), and a whole request through
the WSGI app (routing, a plan over an in-process fake backend, the response) with and
without a device's ``X-Request-Id``. Run with ``PYTHONPATH`` at an older checkout to get its
rows (the pieces it lacks are skipped).

    .venv/bin/python benchmarks/request_id_cost.py [--number 5000] [--runs 5]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import io  # noqa: E402
import logging  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402

from _inprocess import PLANS, best_us  # noqa: E402

from orchestrator.frontend.request import arrive  # noqa: E402
from orchestrator.testkit import PackageHarness  # noqa: E402


def _arrivals(harness: PackageHarness, number: int, runs: int) -> list[tuple[str, float]]:
    pipeline = harness.frontdoor.metrics.request()
    bare = {"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/x"}
    device = {**bare, "HTTP_X_REQUEST_ID": "device-chosen-id-1"}
    rows = [
        ("arrive: id made here", best_us(lambda: arrive(bare, 0.0, pipeline), number, runs)),
        (
            "arrive: device's id, fresh one for backends",
            best_us(lambda: arrive(device, 0.0, pipeline), number, runs),
        ),
    ]
    try:
        arrive(device, 0.0, pipeline, trust_request_id=True)  # type: ignore[call-arg]
    except TypeError:  # an older checkout: the device's id goes to backends as it is
        return rows
    rows.append(
        (
            "arrive: device's id, trusted",
            best_us(
                lambda: arrive(device, 0.0, pipeline, trust_request_id=True),  # type: ignore[call-arg]
                number,
                runs,
            ),
        )
    )
    return rows


def _drainable(harness: PackageHarness, number: int, runs: int) -> list[tuple[str, float]]:
    try:
        from orchestrator.frontend.draining import DrainableApp
    except ImportError:
        return []

    def trivial(_environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b"{}"]

    wrapped = DrainableApp(harness.frontdoor, trivial)

    def serve(app: Any) -> Callable[[], None]:
        def once() -> None:
            result = app({}, lambda _s, _h: None)
            b"".join(result)
            close = getattr(result, "close", None)
            if close is not None:
                close()

        return once

    return [
        ("trivial WSGI app, bare", best_us(serve(trivial), number, runs)),
        ("trivial WSGI app in DrainableApp", best_us(serve(wrapped), number, runs)),
    ]


def _whole(harness: PackageHarness, number: int, runs: int) -> list[tuple[str, float]]:
    app = harness.frontdoor.app

    def plans(headers: dict[str, str]) -> Callable[[], Any]:
        def once() -> Any:
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/v1/nonmember/plans",
                "QUERY_STRING": "country=US",
                "REMOTE_ADDR": "127.0.0.1",
                "wsgi.input": io.BytesIO(),
                **headers,
            }
            return b"".join(app(environ, lambda _s, _h: None))

        return once

    rows = []
    for label, headers in (
        ("GET plans, no X-Request-Id", {}),
        ("GET plans, device's X-Request-Id", {"HTTP_X_REQUEST_ID": "device-chosen-id-1"}),
    ):
        request = plans(headers)
        request()  # warm
        rows.append((label, best_us(request, number, runs)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--number", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with PackageHarness(
        ["orchestrator.apis.nonmember"],
        {
            "plans": lambda _request: PLANS,
            **dict.fromkeys(("trial", "accounts", "billing"), lambda _request: {}),
        },
    ) as harness:
        rows = _arrivals(harness, args.number * 20, args.runs)
        rows += _drainable(harness, args.number * 20, args.runs)
        rows += _whole(harness, args.number, args.runs)
    width = max(len(name) for name, _ in rows)
    print(f"{'what':<{width}}  µs CPU")
    for name, us in rows:
        print(f"{name:<{width}}  {us:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
