"""The WSGI app: which WSGI callable serves admin routes, and an unexpected error logged
once, with its request id, and no credential."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from typing import Any

import gevent
import gevent.event
import pytest

from actors.messages import Call, Reply
from actors.plan import StepRecord
from orchestrator.config import LimitsSettings, load_settings
from orchestrator.frontend import problems
from orchestrator.frontend.app import AppOptions, FrontdoorApp
from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.body import BodyReader
from orchestrator.ops.access_log import FIELDS_ATTR, JsonFormatter
from orchestrator.ops.admin import AdminHandler, BackendView, EndpointWindows
from orchestrator.ops.instance import Instance, LocalWorker
from orchestrator.plans import EndpointRegistry
from orchestrator.testkit import PackageHarness

ADMIN_TOKEN = "admin-token-for-app-tests-0123"  # noqa: S105 - a test value, not a credential


class NoBackends:
    """The app's Backends with nothing behind them (no endpoint here calls one)."""

    running = True

    def submit(self, call: Call) -> Reply | None:
        """Never called: the registry is empty."""
        raise AssertionError(call)

    def record_fallbacks(self, records: Iterable[StepRecord]) -> None:
        """Nothing to count."""


class BrokenViews:
    """Backend views whose reading fails once ``broken``: a bug behind an admin route."""

    broken = False

    def backend_views(self) -> list[BackendView]:
        """No backends; or fail like a bug would."""
        if self.broken:
            raise RuntimeError("views are broken")
        return []


@pytest.fixture
def app() -> FrontdoorApp:
    """An app with no endpoints and an admin handler over views that break when told
    (``app.views.broken``)."""
    signer = TokenSigner(b"k" * 32, 3600)
    views = BrokenViews()
    admin = AdminHandler(Instance(LocalWorker(views, EndpointWindows(()))), admin_token=ADMIN_TOKEN)
    app = FrontdoorApp(
        EndpointRegistry(()),
        NoBackends(),
        signer,
        AppOptions(admin_token=ADMIN_TOKEN),
        admin=admin,
    )
    app.views = views  # type: ignore[attr-defined] # the test's handle on the bug
    return app


def call(wsgi: Any, path: str, **headers: str) -> tuple[int, dict[str, Any]]:
    """Send one GET through a WSGI callable; its status and JSON body."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(),
        **{"HTTP_" + name.upper(): value for name, value in headers.items()},
    }
    statuses: list[str] = []
    body = b"".join(wsgi(environ, lambda status, _headers: statuses.append(status)))
    return int(statuses[0].split()[0]), json.loads(body)


def test_admin_paths_per_callable(app):
    """The app serves admin routes; device_only answers 404; admin_only serves nothing else."""
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    for served in (app, app.admin_only):
        status, body = call(served, "/_admin/endpoints", **auth)
        assert (status, body["endpoints"]) == (200, [])
    status, body = call(app.device_only, "/_admin/endpoints", **auth)
    assert (status, body["code"]) == (404, "not_found")
    assert call(app.device_only, "/healthz") == (200, {"status": "ok"})
    for path in ("/healthz", "/readyz", "/v1/catalog", "/"):
        status, body = call(app.admin_only, path, **auth)
        assert (status, body["code"]) == (404, "not_found"), path


def test_an_unexpected_error_is_logged_once_with_its_request_id(app, caplog):
    """500 for the client; one ERROR line with the traceback and request_id; no token."""
    caplog.set_level(logging.INFO)
    app.views.broken = True
    status, body = call(
        app, "/_admin/backends", authorization=f"Bearer {ADMIN_TOKEN}", x_request_id="boom-1"
    )
    assert (status, body["code"], body["request_id"]) == (500, "internal_error", "boom-1")
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert getattr(error, FIELDS_ATTR) == {"request_id": "boom-1"}
    line = json.loads(JsonFormatter(redact=[ADMIN_TOKEN]).format(error))
    assert (line["request_id"], line["exc_type"]) == ("boom-1", "RuntimeError")
    assert "views are broken" in line["exc"]
    lines = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert ADMIN_TOKEN not in lines
    assert lines.count("Traceback") == 1


def test_while_shedding_the_apps_own_endpoints_are_answered(app):
    """Documents, health and admin routes are answered while shedding, and routing costs
    nothing of admission."""
    for _ in range(app.admission.max_inflight):
        assert app.admission.try_enter()
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    assert call(app, "/healthz")[0] == 200
    assert call(app, "/_admin/endpoints", **auth)[0] == 200
    assert call(app, "/v1/catalog")[0] == 200
    # Routing comes before admission (microseconds, and it reads nothing): an unknown path
    # is a 404 whatever the load; requests that route are shed once received
    # (test_device_requests_are_shed_once_their_body_is_in below).
    status, body = call(app, "/v1/anything")
    assert (status, body["code"]) == (404, "not_found")
    assert app.admission.shed == 0


def test_a_draining_app_is_not_ready(app):
    assert call(app, "/readyz") == (200, {"ready": True, "draining": False})
    app.draining = True
    assert call(app, "/readyz") == (503, {"ready": False, "draining": True})
    assert app.draining


# -- admission after the body, per-client limits and fairness (findings 1 and 4) ----------

US_PLANS = {
    "country": "US",
    "currency": "USD",
    "plans": [
        {
            "id": "basic",
            "name": "Basic",
            "price": 999,
            "currency": "USD",
            "max_streams": 1,
            "video_quality": "720p",
        }
    ],
}
HEARTBEAT = {"title_id": "t42", "position_s": 60}


class Gate:
    """Holds the backend calls of chosen members until released (an event, not a sleep)."""

    def __init__(self, *members: str) -> None:
        self.members = members
        self.opened = gevent.event.Event()

    def bookmarks(self, request: Any) -> Any:
        if any(f"/{member}/" in request.target() for member in self.members):
            self.opened.wait()
        return {"position_s": 60}


def harness(gate: Gate | None = None, **settings: str) -> PackageHarness:
    """Non-member and playback endpoints over fakes; ``settings``: FRONTDOOR_<KEY> values."""
    held = gate if gate is not None else Gate()

    def unused(request: Any) -> Any:
        raise AssertionError(request)

    handlers = dict.fromkeys(
        (
            *("subscriber", "device", "playback", "licensing", "history", "catalog"),
            *("eligibility", "accounts", "billing", "trial"),
        ),
        unused,
    )
    return PackageHarness(
        ["orchestrator.apis.nonmember", "orchestrator.apis.playback"],
        {**handlers, "plans": lambda _request: US_PLANS, "bookmarks": held.bookmarks},
        environ={f"FRONTDOOR_{key.upper()}": value for key, value in settings.items()},
    )


def heartbeat(device: PackageHarness, member: str) -> Any:
    return device.post("/v1/playback/heartbeat", HEARTBEAT, member=member)


class SlowBody(io.RawIOBase):
    """A request body that arrives only when the test says so."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.arrived = gevent.event.Event()

    def read(self, size: int = -1) -> bytes:
        self.arrived.wait()
        payload, self.payload = self.payload, b""
        return payload if size < 0 else payload[:size]


def environ_with(body: io.RawIOBase, length: int, token: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/playback/heartbeat",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(length),
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.input": body,
    }


def test_the_limit_settings_reach_the_app():
    assert load_settings(environ={}).limits == LimitsSettings(
        enabled=True, member_rate=20.0, member_burst=60, address_rate=250.0, address_burst=500
    )
    assert load_settings(environ={}).server.body_timeout_s == 1.0
    with harness(limits_enabled="false") as device:
        assert device.frontdoor.app.limiter is None
    with harness(limits_member_burst="7") as device:
        limiter = device.frontdoor.app.limiter
        assert limiter is not None
        assert limiter.member.policy.burst == 7


def test_a_member_over_its_burst_gets_429_with_the_ratelimit_fields():
    with harness(limits_member_burst="2", limits_member_rate="0.001") as device:
        assert [heartbeat(device, "m1").status for _ in range(2)] == [200, 200]
        refused = heartbeat(device, "m1")
        assert refused.status == 429
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json["code"] == "rate_limited"
        assert refused.json["request_id"] == refused.headers["X-Request-Id"]
        assert refused.headers["RateLimit-Policy"] == '"member";q=2;w=2000'
        assert refused.headers["RateLimit"] == '"member";r=0;t=1000'
        assert refused.headers["Retry-After"] == "1000"
        assert heartbeat(device, "m2").status == 200  # another member is not affected
        # the public endpoint is charged to the address, not to the member's bucket
        assert device.get("/v1/nonmember/plans", query={"country": "US"}).status == 200


def test_requests_without_a_member_are_limited_per_address():
    with harness(limits_address_burst="2", limits_address_rate="0.001") as device:
        plans = [device.get("/v1/nonmember/plans", query={"country": "US"}) for _ in range(3)]
        assert [reply.status for reply in plans] == [200, 200, 429]
        assert plans[2].headers["RateLimit-Policy"] == '"address";q=2;w=2000'
        assert heartbeat(device, "m1").status == 200  # members have their own buckets


def test_a_batch_costs_its_number_of_calls():
    with harness(limits_member_burst="4", limits_member_rate="0.001") as device:
        call_plans = {"method": "GET", "path": "/v1/nonmember/plans", "query": {"country": "US"}}
        calls = [{"id": f"c{index}", **call_plans} for index in range(3)]
        batch = device.post("/v1/batch", {"requests": calls}, member="m1")
        assert batch.status == 200
        assert [reply["status"] for reply in batch.json["responses"]] == [200, 200, 200]
        assert heartbeat(device, "m1").status == 200  # the fourth token
        assert heartbeat(device, "m1").status == 429
        again = device.post("/v1/batch", {"requests": calls[:1]}, member="m1")
        assert again.status == 429


def test_a_slow_body_holds_no_admission_slot():
    """Finding 1: with one slot, a body still on its way does not keep others out."""
    with harness(server_max_inflight="1") as device:
        app = device.frontdoor.app
        payload = json.dumps(HEARTBEAT).encode()
        body = SlowBody(payload)
        environ = environ_with(body, len(payload), device.frontdoor.signer.issue("m1"))
        statuses: list[str] = []
        slow = gevent.spawn(lambda: b"".join(app(environ, lambda s, _h: statuses.append(s))))
        gevent.idle()
        assert not statuses  # still waiting for its body
        assert app.admission.inflight == 0
        assert device.get("/v1/nonmember/plans", query={"country": "US"}).status == 200
        body.arrived.set()
        slow.join()
        assert statuses == ["200 OK"]


def test_device_requests_are_shed_once_their_body_is_in():
    with harness(server_max_inflight="1") as device:
        app = device.frontdoor.app
        assert app.admission.try_enter()
        shed = heartbeat(device, "m1")
        assert (shed.status, shed.json["code"]) == (503, "overloaded")
        app.admission.leave()
        assert heartbeat(device, "m1").status == 200


def test_a_body_gets_its_timeout_however_far_the_deadline():
    body = SlowBody(b"{}")
    reader = BodyReader(65_536, lambda: 0.0, timeout_s=0.01)
    environ = {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "2", "wsgi.input": body}
    with (
        gevent.Timeout(10, AssertionError("the body timeout did not fire")),
        pytest.raises(problems.Problem) as caught,
    ):
        reader.read(environ, deadline=3600.0)
    assert (caught.value.status, caught.value.headers["Connection"]) == (408, "close")


def test_a_flooding_member_leaves_slots_for_others():
    """Finding 4: one member holding most slots is shed first; another member gets in."""
    gate = Gate("m1")
    with harness(gate, server_max_inflight="4") as device:
        app = device.frontdoor.app
        held = [gevent.spawn(heartbeat, device, "m1") for _ in range(3)]
        gevent.idle()
        assert app.admission.held(("member", "m1")) == 3
        flood = heartbeat(device, "m1")
        assert (flood.status, flood.json["code"]) == (503, "overloaded")
        assert heartbeat(device, "m2").status == 200
        gate.opened.set()
        assert [greenlet.get().status for greenlet in held] == [200, 200, 200]
