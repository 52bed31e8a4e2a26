"""orchestrator.ops.admin: admin auth, backend and endpoint views, audited breaker actions."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from view_fakes import Clock, Decl, FakeBackend, FakeSystem

from actors.outcomes import BreakerState
from actors.stats import WindowStats
from actors.system import AdaptiveTotals
from orchestrator.frontend import problems
from orchestrator.frontend.auth import TokenSigner
from orchestrator.ops.admin import (
    BREAKER_STATES,
    AdminHandler,
    AdminRequest,
    EndpointWindows,
    endpoint_outcome,
    gauge_snapshot,
    parse_breaker_action,
)
from orchestrator.ops.instance import Instance, LocalWorker

ADMIN_TOKEN = "admin-token-for-tests-0123456789"  # noqa: S105 - a test value, not a credential
SIGNER = TokenSigner(b"k" * 32, 3600, clock=lambda: 1_000_000.0)
MEMBER = SIGNER.issue("m1")
ADMIN_JWT = SIGNER.issue("alice", scope="admin")
WALL = 1_700_000_000.0  # 2023-11-14T22:13:20Z


ENDPOINTS = (
    Decl("playback", "play", "playback", "POST", "/v1/playback/play"),
    Decl("nonmember", "plans", "growth", "GET", "/v1/nonmember/plans"),
)


@pytest.fixture
def clock() -> Clock:
    """The shared monotonic clock."""
    return Clock()


@pytest.fixture
def system(clock: Clock) -> FakeSystem:
    """Two backends: ratings (healthy) and catalog."""
    return FakeSystem(
        [
            FakeBackend("ratings", WindowStats(clock=clock), clock=clock),
            FakeBackend("catalog", WindowStats(clock=clock), clock=clock, max_queue=5),
        ]
    )


@pytest.fixture
def windows(clock: Clock) -> EndpointWindows:
    """Endpoint windows for two endpoints."""
    return EndpointWindows(ENDPOINTS, clock=clock)


@pytest.fixture
def audit(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    """The audit logger, captured."""
    caplog.set_level(logging.INFO, logger="test.admin.audit")
    return logging.getLogger("test.admin.audit")


@pytest.fixture
def handler(system, windows, clock, audit) -> AdminHandler:
    """An admin handler over the fakes, with fixed clocks."""
    return AdminHandler(
        one_process(system, windows, clock),
        admin_token=ADMIN_TOKEN,
        signer=SIGNER,
        audit=audit,
        clock=lambda: WALL,
    )


PID = 4242


def one_process(system: FakeSystem, windows: EndpointWindows, clock: Clock) -> Instance:
    """The instance of one process (pid 4242) over the fakes, its wall clock fixed."""
    return Instance(
        LocalWorker(system, windows, clock=clock, wall_clock=lambda: WALL, pid=lambda: PID)
    )


def no_body() -> Mapping[str, Any]:
    """A body reader that must not be called."""
    raise AssertionError("body read")


def request(
    path: str = "/_admin/backends",
    method: str = "GET",
    token: str | None = ADMIN_TOKEN,
    body: Mapping[str, Any] | None = None,
) -> AdminRequest:
    """An admin request with a bearer token (None: no Authorization header)."""
    return AdminRequest(
        method=method,
        path=path,
        authorization=None if token is None else f"Bearer {token}",
        request_id="req-7",
        client="127.0.0.1",
        read_body=no_body if body is None else lambda: body,
    )


def problem_of(handler: AdminHandler, req: AdminRequest) -> problems.Problem:
    """The problem the handler raises for ``req``."""
    with pytest.raises(problems.Problem) as caught:
        handler.handle(req)
    return caught.value


# -- auth ------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token", ADMIN_TOKEN + "x", "", "eyJ.x.y"])
def test_missing_or_invalid_credentials_get_401(handler, token):
    """No token or a bad one: 401, whatever the path."""
    for path in ("/_admin/backends", "/_admin/nowhere"):
        assert problem_of(handler, request(path, token=token)).status == 401


def test_member_token_gets_403(handler, caplog):
    """A valid member token is recognised and refused; the denial is audited."""
    assert problem_of(handler, request(token=MEMBER)).status == 403
    denied = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "admin_denied"]
    assert denied[0].fields["why"] == "member token"
    assert MEMBER not in caplog.text


def test_admin_token_and_admin_scoped_jwt_are_accepted(handler):
    """The configured admin token, or a signed admin-scope token."""
    assert handler.handle(request()).status == 200
    assert handler.handle(request(token=ADMIN_JWT)).status == 200


def test_blank_admin_token_setting_admits_nobody(system, windows, audit):
    """An empty configured token disables the static-token path."""
    handler = AdminHandler(one_process(system, windows, Clock()), admin_token="", audit=audit)
    for presented in (" ", "x"):
        assert problem_of(handler, request(token=presented)).status == 401


def test_handles_only_admin_paths():
    """The app's routing test."""
    assert AdminHandler.handles("/_admin/backends")
    assert AdminHandler.handles("/_admin")
    assert not AdminHandler.handles("/_administrator")
    assert not AdminHandler.handles("/v1/_admin/backends")


# -- views -----------------------------------------------------------------------------


def test_backends_view_shows_breaker_bulkhead_and_window(handler, system, clock):
    """Each backend's breaker (with when it changed), bulkhead and 10 s window, by name."""
    catalog = system.backends[1]
    for _ in range(10):
        catalog.stats.record("failure", 4.0)
    catalog.breaker_state = "open"
    catalog.breaker_changed_at = clock.now - 2.5
    catalog.inflight, catalog.queued = 3, 1
    body = handler.handle(request()).body
    assert body["generated_at"] == "2023-11-14T22:13:20.000Z"
    assert [b["name"] for b in body["backends"]] == ["catalog", "ratings"]
    view = body["backends"][0]
    breaker = {
        "state": "open",
        "override": None,
        "changed_at": "2023-11-14T22:13:17.500Z",
        "seconds_since_change": 2.5,
    }
    assert view["breaker"] == {**breaker, "workers": {"open": 1}}
    assert body["instance"] == {
        "served_by": PID,
        "workers": [{"pid": PID, "started_at": WALL}],
        "missing": [],
    }
    (mine,) = view["workers"]
    assert (mine["pid"], mine["breaker"], mine["window"]) == (PID, breaker, view["window"])
    assert (view["inflight"], view["queued"], view["max_concurrent"], view["max_queue"]) == (
        3,
        1,
        10,
        5,
    )
    assert (view["window"]["calls"], view["window"]["failures"]) == (10, 10)
    assert (view["limit"], mine["limit"]) == (None, None)  # no adaptive limit
    assert view["window"]["latency_ms"]["p99"] == 4.0
    never = body["backends"][1]["breaker"]
    assert (never["changed_at"], never["seconds_since_change"]) == (None, None)


def test_endpoints_view_shows_team_inflight_and_window(handler, windows):
    """Per endpoint: owning team, plans in flight, outcomes over the window."""
    windows.record("playback.play", 200, 30.0, degraded=True)
    windows.record("playback.play", 504, 2000.0)
    windows.record("playback.play", 503, 5.0)
    windows.record("playback.play", 400, 1.0)
    windows.record("nope.nope", 200, 1.0)  # unknown: ignored
    with windows.running("playback.play"):
        body = handler.handle(request("/_admin/endpoints")).body
    nonmember, play = body["endpoints"]
    assert (nonmember["name"], nonmember["team"], nonmember["window"]["calls"]) == (
        "nonmember.plans",
        "growth",
        0,
    )
    assert (play["team"], play["method"], play["path"], play["inflight"]) == (
        "playback",
        "POST",
        "/v1/playback/play",
        1,
    )
    window = play["window"]
    assert (window["calls"], window["successes"], window["timeouts"]) == (4, 1, 1)
    assert (window["failures"], window["client_errors"], window["fallbacks"]) == (1, 1, 1)
    assert windows.totals()[1][1] == 0  # left the block: (info, inflight, window)


def test_running_releases_on_error(windows):
    """In-flight counts come back down when the plan raises."""
    with pytest.raises(RuntimeError), windows.running("playback.play"):
        raise RuntimeError
    with windows.running("unknown.key"):
        pass
    assert all(inflight == 0 for _, inflight, _ in windows.totals())


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "success"),
        (201, "success"),
        (404, "client_error"),
        (500, "failure"),
        (503, "failure"),
        (504, "timeout"),
    ],
)
def test_endpoint_outcome(status, outcome):
    """Statuses map to window outcomes."""
    assert endpoint_outcome(status) == outcome


def test_breaker_states_are_the_breakers_own():
    """What a view may say is ``BreakerState``, in the package's words."""
    assert BREAKER_STATES == tuple(BreakerState) == ("closed", "open", "half_open")


def test_gauge_snapshot_from_views(system):
    """The metrics gauges come from the same views; half-open counts as open."""
    system.backends[0].breaker_state = "half_open"
    system.backends[1].inflight = 4
    snapshot = gauge_snapshot(system.backend_views(), frontend_inflight=9, shed_total=2)
    assert snapshot.backends["ratings"].breaker_open
    assert not snapshot.backends["catalog"].breaker_open
    assert snapshot.backends["catalog"].inflight == 4
    assert (snapshot.frontend_inflight, snapshot.shed_total) == (9, 2)


# -- actions ---------------------------------------------------------------------------


def test_force_open_applies_and_is_audited(handler, system, clock, caplog):
    """Forcing a breaker open answers before/after and writes one audit line."""
    body = {"force": "open", "reason": "INC-42 catalog melting"}
    reply = handler.handle(request("/_admin/backends/catalog/breaker", "POST", body=body))
    assert reply.status == 200
    assert system.backends[1].forced == ["open"]
    assert reply.body["before"]["state"] == "closed"
    assert reply.body["breaker"]["state"] == "open"
    assert reply.body["breaker"]["override"] == "open"
    (line,) = [r for r in caplog.records if r.fields.get("event") == "admin_action"]
    assert line.levelname == "WARNING"
    assert line.fields == {
        "event": "admin_action",
        "action": "breaker.force",
        "backend": "catalog",
        "force": "open",
        "reason": "INC-42 catalog melting",
        "who": "admin_token",
        "client": "127.0.0.1",
        "request_id": "req-7",
        "before": {"state": "closed", "override": None},
        "after": {"state": "open", "override": "open"},
        "workers": [PID],
        "missing": [],
    }
    assert reply.body["applied_to"] == [
        {"pid": PID, "applied": True, "breaker": reply.body["breaker"]}
    ]
    assert reply.body["scope"] == "this process (the whole instance)"


def test_clear_returns_to_automatic_and_names_the_jwt_admin(handler, system, caplog):
    """``clear`` removes the override; a JWT admin is named by subject."""
    path = "/_admin/backends/ratings/breaker"
    handler.handle(request(path, "POST", token=ADMIN_JWT, body={"force": "closed"}))
    handler.handle(request(path, "POST", token=ADMIN_JWT, body={"force": "clear"}))
    assert system.backends[0].forced == ["closed", "clear"]
    whos = [r.fields["who"] for r in caplog.records if r.fields.get("event") == "admin_action"]
    assert whos == ["token:alice", "token:alice"]


def test_body_is_not_read_before_authentication(handler):
    """An anonymous POST is refused without reading its body."""
    req = request("/_admin/backends/catalog/breaker", "POST", token=None)
    assert problem_of(handler, req).status == 401  # no_body would have raised


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/_admin/backends/nosuch/breaker", "POST", 404),
        ("/_admin/backends/CATALOG/breaker", "POST", 404),
        ("/_admin/backends/catalog%0A/breaker", "POST", 404),
        ("/_admin/backends/catalog/breaker", "GET", 405),
        ("/_admin/backends", "POST", 405),
        ("/_admin/endpoints", "DELETE", 405),
        ("/_admin", "GET", 404),
    ],
)
def test_routing_errors(handler, path, method, status):
    """Unknown backends are 404, wrong methods 405 with Allow."""
    problem = problem_of(handler, request(path, method, body={"force": "open"}))
    assert problem.status == status
    if status == 405:
        assert "Allow" in problem.headers


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"force": "half_open"},
        {"force": 1},
        {"force": "open", "extra": True},
        {"force": "open", "reason": 5},
        {"force": "open", "reason": "x" * 201},
    ],
)
def test_invalid_actions_are_400_and_change_nothing(handler, system, body):
    """Only force open/closed/clear with an optional short reason is accepted."""
    problem = problem_of(handler, request("/_admin/backends/catalog/breaker", "POST", body=body))
    assert problem.status == 400
    assert system.backends[1].forced == []


def test_parse_breaker_action_defaults_reason():
    """The reason is optional."""
    action = parse_breaker_action({"force": "clear"})
    assert (action.force, action.reason) == ("clear", "")


def test_backends_view_and_gauges_show_the_adaptive_limit(handler, system):
    """A backend with an adaptive limit shows it in /_admin/backends (and per worker) and
    in its gauge; one without shows null and sends no limit gauge."""
    system.backends[1].limit = 7
    body = handler.handle(request()).body
    catalog, ratings = body["backends"]
    assert (catalog["name"], catalog["limit"], catalog["workers"][0]["limit"]) == (
        "catalog",
        7,
        7,
    )
    assert ratings["limit"] is None
    snapshot = gauge_snapshot(system.backend_views(), frontend_inflight=0, shed_total=0)
    assert (snapshot.backends["catalog"].limit, snapshot.backends["ratings"].limit) == (7, None)


def test_backends_view_shows_hedging_and_collapsing_counts(handler, system):
    """A hedging backend's counts show in /_admin/backends and per worker, the collapsing
    fields null (it does not collapse); a backend with neither shows null."""
    system.backends[1].adaptive = AdaptiveTotals(hedges_sent_total=12, hedges_won_total=9)
    body = handler.handle(request()).body
    catalog, ratings = body["backends"]
    expected = {
        "hedges_sent_total": 12,
        "hedges_won_total": 9,
        "collapse_calls_in_total": None,
        "collapse_calls_out_total": None,
    }
    assert catalog["adaptive"] == catalog["workers"][0]["adaptive"] == expected
    assert ratings["adaptive"] is ratings["workers"][0]["adaptive"] is None
