"""What operators read, over real sockets and the real JSON formatter: one access line per
request with every field, no secret anywhere, and breaker, shedding and restart events."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import pytest
import requests

from backends.simulated import Fault, SimulatedBackends
from backends.simulated.reference import SERVICES
from orchestrator.config import load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.ops.access_log import JsonFormatter
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.e2e

TIMEOUT_S = 10
ADMIN_TOKEN = "operators-admin-token-for-log-tests"  # noqa: S105 - a test value
TOKEN_SECRET = "token-secret-for-log-tests-0123456789"  # noqa: S105 - a test value


class JsonSink(io.StringIO):
    """The stream the root logger writes to: every line parsed back, and a way to wait."""

    def __init__(self) -> None:
        super().__init__()
        self._grew = gevent.event.Event()

    def write(self, text: str) -> int:
        """Keep the text; wake whoever waits for a line."""
        written = super().write(text)
        self._grew.set()
        return written

    def lines(self) -> list[dict[str, Any]]:
        """Every line so far, each one JSON object."""
        return [json.loads(line) for line in self.getvalue().splitlines()]

    def events(self, event: str) -> list[dict[str, Any]]:
        """The lines whose ``event`` field is ``event``."""
        return [line for line in self.lines() if line.get("event") == event]

    def wait_for(self, event: str) -> list[dict[str, Any]]:
        """Wait until some line is ``event`` (it may come from an actor's greenlet)."""
        with gevent.Timeout(TIMEOUT_S, AssertionError(f"no {event!r} line")):
            while True:
                self._grew.clear()
                found = self.events(event)
                if found:
                    return found
                self._grew.wait()


@pytest.fixture
def log() -> Iterator[JsonSink]:
    """The root logger also writes what ``frontdoor serve`` writes (``JsonFormatter`` lines,
    secrets redacted) to a sink; pytest's own handlers stay in place."""
    root = logging.getLogger()
    saved_level = root.level
    sink = JsonSink()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter(redact=(ADMIN_TOKEN, TOKEN_SECRET)))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield sink
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


@pytest.fixture
def backends() -> Iterator[SimulatedBackends]:
    """The simulated microservices, no added latency."""
    sim = SimulatedBackends(latency_profile="none").start(host="127.0.0.1", port=0)
    yield sim
    sim.stop()


class Stack:
    """A running Frontdoor with its own settings; ``get`` sends a member token."""

    def __init__(self, backends: SimulatedBackends, environ: dict[str, str]) -> None:
        settings = load_settings(
            environ={
                "FRONTDOOR_AUTH_ADMIN_TOKEN": ADMIN_TOKEN,
                "FRONTDOOR_AUTH_TOKEN_SECRET": TOKEN_SECRET,
                "FRONTDOOR_STATSD_ENABLED": "false",
                "FRONTDOOR_STATSD_GAUGE_INTERVAL_S": "3600",  # tests report by hand
                **environ,
            }
        )
        specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
        self.frontdoor = Frontdoor.build(settings, specs)
        self.server = HttpServer(self.frontdoor, "127.0.0.1", 0, drain_s=TIMEOUT_S)
        self.server.start()
        self.url = self.server.url
        self.token = self.frontdoor.signer.issue("m1")
        self.http = requests.Session()
        self.http.trust_env = False

    def get(self, path: str, headers: dict[str, str] | None = None) -> requests.Response:
        """GET with the member token unless ``headers`` carry an Authorization."""
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.http.get(self.url + path, headers=sent, timeout=TIMEOUT_S)

    def close(self) -> None:
        """Drain and stop."""
        self.http.close()
        self.server.stop()


@pytest.fixture
def make_stack(backends: SimulatedBackends) -> Iterator[Any]:
    """Start a stack with extra FRONTDOOR_* settings; stopped after the test."""
    stacks: list[Stack] = []

    def make(**environ: str) -> Stack:
        stacks.append(Stack(backends, environ))
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.close()


def test_a_real_request_writes_one_access_line_with_every_field(log, backends, make_stack):
    """Time, request id, method, path, endpoint, team, status, latency, degraded parts,
    backend calls, client address and device type, read back from the emitted JSON line."""
    stack = make_stack(FRONTDOOR_BACKENDS_RATINGS_RETRY_MAX_ATTEMPTS="1")
    backends.set_fault("ratings", Fault(error_rate=1.0))
    backends.reset_calls()
    query = "rows=1&per_row=2"
    reply = stack.get(
        f"/v2/discovery/home?{query}",
        headers={"X-Request-Id": "fields-1", "X-Device-Type": "tv-samsung-2024"},
    )
    assert reply.status_code == 200
    assert reply.headers["X-Request-Id"] == "fields-1"
    calls_made = sum(backends.calls(service) for service in SERVICES)

    (line,) = [line for line in log.events("access") if line["request_id"] == "fields-1"]
    moment = dt.datetime.fromisoformat(line.pop("time"))
    assert moment.tzinfo == dt.UTC
    assert abs(dt.datetime.now(dt.UTC) - moment) < dt.timedelta(minutes=5)
    latency_ms = line.pop("latency_ms")
    assert isinstance(latency_ms, float)
    assert latency_ms > 0
    # The device chose its request id: backends got one made here, logged beside it.
    backend_request_id = line.pop("backend_request_id")
    assert len(backend_request_id) == 32
    assert backend_request_id != "fields-1"
    assert line == {
        "level": "INFO",
        "logger": "frontdoor.access",
        "message": "access",
        "event": "access",
        "request_id": "fields-1",
        "method": "GET",
        "path": "/v2/discovery/home",
        "query_chars": len(query),
        "endpoint": "discovery.home_v2",
        "team": "discovery",
        "status": 200,
        "degraded": ["ratings"],
        "backend_calls": calls_made,
        "client": "127.0.0.1",
        "device_type": "tv-samsung-2024",
        "slow": False,
    }
    assert calls_made >= 2  # at least the rows and the failing ratings call


def test_the_device_type_of_a_play_comes_from_its_own_parameter(log, make_stack):
    """Play takes ``device_type`` in its body: the access line shows it, no header needed,
    and the body's value wins over an ``X-Device-Type`` header."""
    stack = make_stack()
    sent = {"Authorization": f"Bearer {stack.token}"}
    play = {"title_id": "t42", "device_type": "tv-samsung-2024"}
    for request_id, extra in (("play-1", {}), ("play-2", {"X-Device-Type": "web-chrome"})):
        reply = stack.http.post(
            stack.url + "/v1/playback/play",
            json=play,
            headers={**sent, "X-Request-Id": request_id, **extra},
            timeout=TIMEOUT_S,
        )
        assert reply.status_code == 200, reply.text
    lines = {line["request_id"]: line for line in log.events("access")}
    assert lines["play-1"]["device_type"] == "tv-samsung-2024"
    assert lines["play-2"]["device_type"] == "tv-samsung-2024"


def test_an_unrouted_request_still_gets_its_line(log, make_stack):
    """A 404 has a line too: no endpoint, no team, no backend call, no device type."""
    stack = make_stack()
    assert stack.get("/v1/nowhere", headers={"X-Request-Id": "lost-1"}).status_code == 404
    (line,) = [line for line in log.events("access") if line["request_id"] == "lost-1"]
    assert (line["endpoint"], line["team"], line["status"]) == (None, None, 404)
    assert (line["backend_calls"], line["degraded"], line["device_type"]) == (0, [], None)


def test_secrets_sent_in_requests_never_reach_the_log(log, make_stack):
    """Member tokens, the admin token and the token secret appear in no line."""
    stack = make_stack()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert stack.get("/_admin/backends", headers=admin).status_code == 200
    # The admin token where a member token belongs: refused, and the reason logged.
    assert stack.get("/v2/discovery/home?rows=1", headers=admin).status_code == 401
    assert stack.get("/v2/discovery/home?rows=1", headers={"Authorization": "junk"}).ok is False
    traced = stack.get(
        "/v2/discovery/home?rows=1&per_row=1",
        headers={"X-Frontdoor-Trace": "1", "X-Frontdoor-Admin-Token": ADMIN_TOKEN},
    )
    assert "trace" in traced.json()["meta"]
    # An operator pasting secrets into the audited reason: the formatter scrubs them.
    action = stack.http.post(
        stack.url + "/_admin/backends/ratings/breaker",
        json={"force": "clear", "reason": f"oops {ADMIN_TOKEN} {TOKEN_SECRET}"},
        headers=admin,
        timeout=TIMEOUT_S,
    )
    assert action.status_code == 200
    raw = log.getvalue()
    assert len(log.events("access")) == 5
    (audit,) = log.events("admin_action")
    assert "[redacted]" in json.dumps(audit)
    for secret in (ADMIN_TOKEN, TOKEN_SECRET, stack.token, stack.token.split(".")[2]):
        assert secret not in raw
    assert "eyJ" not in raw


class _Crash:
    """A message no backend actor handles: delivering it crashes the actor."""


def test_breaker_shedding_and_restarts_are_logged_as_events(log, backends, make_stack):
    """Each operational event is one JSON line naming the backend or the counts."""
    stack = make_stack(
        FRONTDOOR_SERVER_MAX_INFLIGHT="1",
        FRONTDOOR_BACKENDS_RATINGS_BREAKER_REQUEST_VOLUME="2",
        FRONTDOOR_BACKENDS_RATINGS_RETRY_MAX_ATTEMPTS="1",
        FRONTDOOR_BACKENDS_PLANS_TIMEOUT_MS="60000",
    )

    # Breaker: two failed ratings calls open it.
    backends.set_fault("ratings", Fault(error_rate=1.0))
    for _ in range(2):
        assert stack.get("/v2/discovery/home?rows=1&per_row=1").status_code == 200
    (opened,) = log.wait_for("breaker_state")
    assert (opened["backend"], opened["old"], opened["new"]) == ("ratings", "closed", "open")
    assert opened["level"] == "WARNING"

    # Shedding: one request holds the only place; the next is shed; the gauge report sees it.
    backends.set_fault("plans", Fault(hang=True))
    held = gevent.spawn(stack.get, "/v1/nonmember/plans?country=US")
    assert backends.wait_held("plans", TIMEOUT_S)
    shed = stack.get("/v1/nonmember/plans?country=US")
    assert (shed.status_code, shed.json()["code"]) == (503, "overloaded")
    stack.frontdoor.reporter.report_once()
    (started,) = log.events("shedding_started")
    assert (started["level"], started["shed"], started["inflight"]) == ("WARNING", 1, 1)
    backends.heal("plans")
    assert held.get(timeout=TIMEOUT_S).status_code == 200
    stack.frontdoor.reporter.report_once()
    (stopped,) = log.events("shedding_stopped")
    assert stopped["shed"] == 1

    # Restart: a crashed backend actor is replaced, and that is an event.
    stack.frontdoor.system.lookup("catalog").tell(_Crash())
    (restarted,) = log.wait_for("backend_restarted")
    assert (restarted["backend"], restarted["restarts"], restarted["level"]) == (
        "catalog",
        1,
        "WARNING",
    )
