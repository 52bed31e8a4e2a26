"""What the tests of the app's stages share: a toy endpoint, requests and scopes, a
``start_response`` that keeps what it was given, and a responder whose observations stay
in memory. A plain module rather than a conftest fixture, since tests call these as
functions (like ``family_harness``).
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

from actors.call_cache import SharedCalls
from actors.messages import Call, Reply
from orchestrator.frontend.observe import Observer
from orchestrator.frontend.request import Request, Scope
from orchestrator.frontend.respond import Responder
from orchestrator.ops.access_log import AccessLog
from orchestrator.ops.admin import EndpointWindows
from orchestrator.ops.metrics import CapturingSink, MetricNames, Metrics
from orchestrator.plans import Auth, Endpoint, Plan, Step, StepContext, get
from orchestrator.schema import body, text


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class NoDirectory:
    """A directory no call should reach."""

    def submit(self, call: Call) -> Reply | None:
        """Fail the test: this stage must not call a backend."""
        raise AssertionError(call)


def echo_plan() -> Plan:
    """One step ``thing`` on backend ``things``; the body is its result."""
    step = Step("thing", "things", lambda _ctx: get("thing"))

    def compose(ctx: StepContext) -> Any:
        return ctx.results["thing"]

    return Plan((step,), compose)


def endpoint(**fields: Any) -> Endpoint:
    """A public ``GET /v1/things/thing`` (``api.name``: ``things.thing``), with ``fields``."""
    declared: dict[str, Any] = {
        "name": "thing",
        "api": "things",
        "team": "core",
        "method": "GET",
        "path": "/v1/things/thing",
        "auth": Auth.PUBLIC,
        "plan": echo_plan(),
        "deadline_ms": 500,
        "summary": "A thing.",
        "fields": body(text("name")),
    }
    declared.update(fields)
    return Endpoint(**declared)


def environ(method: str = "GET", path: str = "/v1/things/thing", **extra: Any) -> dict[str, Any]:
    """A WSGI environ with an empty body, plus ``extra`` keys."""
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(),
        **extra,
    }


def request(method: str = "GET", path: str = "/v1/things/thing", **fields: Any) -> Request:
    """A request that arrived at 100.0 with id ``rid-1``, no metrics unless given."""
    made = Request("rid-1", method, path, 100.0, environ=environ(method, path))
    return dataclasses.replace(made, **fields)


def scope(**fields: Any) -> Scope:
    """A scope with no Authorization, a deadline at 101.0 and no backends behind it."""
    made = Scope(authorization=None, deadline=101.0, calls=SharedCalls(NoDirectory()), trace=False)
    return dataclasses.replace(made, **fields)


class Started:
    """A ``start_response`` that keeps the status line and headers it was given."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status, self.headers = status, headers

    @property
    def code(self) -> int:
        """The status code."""
        return int(self.status.split()[0])

    def header(self, name: str) -> str | None:
        """The value of header ``name``, if given."""
        return dict(self.headers).get(name)


def answer(chunks: list[bytes] | None) -> Any:
    """A JSON response body, decoded."""
    assert chunks is not None
    return json.loads(b"".join(chunks))


def observed(*endpoints: Endpoint) -> tuple[Responder, Observer]:
    """A responder whose observer records into windows of ``endpoints`` and writes an
    access line for every request but those to ``/q`` (its quiet path)."""
    windows = EndpointWindows(endpoints)
    observer = Observer(windows, AccessLog(slow_request_ms=1000), Clock(), quiet=frozenset({"/q"}))
    return Responder(observer), observer


def metrics(*endpoints: Endpoint, sink: CapturingSink | None = None) -> Metrics:
    """Metrics named for ``endpoints`` (and backend ``things``) into ``sink``."""
    names = MetricNames("frontdoor", endpoints, ["things"])
    return Metrics(names, CapturingSink() if sink is None else sink)
