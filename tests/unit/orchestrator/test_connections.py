"""orchestrator.frontend.connections: counting open device connections under two caps."""

from __future__ import annotations

import json
import logging
import re

import pytest

from orchestrator.config import load_settings
from orchestrator.frontend.connections import (
    EVICTION_SLACK,
    RETRY_AFTER_S,
    ConnectionLimits,
    budgeted,
)
from orchestrator.ops.access_log import FIELDS_ATTR


def _parse(response: bytes) -> tuple[str, dict[str, str], dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.decode("ascii").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert int(headers["Content-Length"]) == len(body)
    return status, headers, json.loads(body)


def test_the_total_cap_admits_up_to_it_and_refuses_the_next():
    """max_total connections are admitted (from any addresses); the next is refused and not
    counted."""
    limits = ConnectionLimits(max_total=3, max_per_ip=10)
    assert [limits.admit(ip) for ip in ("a", "b", "a")] == [True, True, True]
    assert limits.admit("c") is False
    assert (limits.open, limits.refused_total, limits.refused_per_ip) == (3, 1, 0)
    assert limits.held_by("c") == 0


def test_the_per_ip_cap_refuses_one_address_and_not_another():
    """An address at its cap is refused; another address is still admitted."""
    limits = ConnectionLimits(max_total=10, max_per_ip=2)
    assert [limits.admit("10.0.0.1") for _ in range(2)] == [True, True]
    assert limits.admit("10.0.0.1") is False
    assert limits.admit("10.0.0.2") is True
    assert (limits.open, limits.refused_per_ip, limits.refused_total) == (3, 1, 0)
    assert limits.held_by("10.0.0.1") == 2


def test_release_gives_the_place_back_and_forgets_idle_addresses():
    """After every admitted connection is released the counts are 0 and the per-address
    table is empty (it does not grow with every address ever seen); places are free again."""
    limits = ConnectionLimits(max_total=2, max_per_ip=1)
    for round_ in range(3):
        ips = [f"10.0.{round_}.1", f"10.0.{round_}.2"]
        assert all(limits.admit(ip) for ip in ips)
        assert limits.admit("10.9.9.9") is False
        for ip in ips:
            limits.release(ip)
        assert (limits.open, limits.clients) == (0, 0)


def test_a_peer_without_an_address_counts_in_the_total_only():
    """A Unix socket's peer (None) has no per-address cap, but fills the total."""
    limits = ConnectionLimits(max_total=3, max_per_ip=1)
    assert all(limits.admit(None) for _ in range(3))
    assert limits.admit(None) is False
    assert limits.clients == 0
    limits.release(None)
    assert limits.open == 2


@pytest.mark.parametrize(("max_total", "max_per_ip"), [(0, 1), (1, 0)])
def test_caps_below_one_are_refused(max_total, max_per_ip):
    with pytest.raises(ValueError, match="caps"):
        ConnectionLimits(max_total, max_per_ip)


def test_a_full_process_answers_503_overloaded_as_a_problem():
    """Over the total cap: 503, problem+json with the stable code and a request id,
    Retry-After, Connection: close, and a Content-Length that matches."""
    limits = ConnectionLimits(max_total=1, max_per_ip=1)
    limits.admit("a")
    assert limits.admit("b") is False
    status, headers, body = _parse(limits.refusal("b"))
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Connection"] == "close"
    assert headers["Retry-After"] == str(RETRY_AFTER_S)
    assert body["code"] == "overloaded"
    assert body["status"] == 503
    assert re.fullmatch(r"[0-9a-f]{32}", str(body["request_id"]))


def test_an_address_over_its_cap_answers_429_rate_limited_with_fresh_ids():
    """Over the per-address cap: 429 ``rate_limited``; each refusal has its own id."""
    limits = ConnectionLimits(max_total=5, max_per_ip=1)
    limits.admit("a")
    assert limits.admit("a") is False
    first, second = (_parse(limits.refusal("a")) for _ in range(2))
    assert first[0] == "HTTP/1.1 429 Too Many Requests"
    assert first[2]["code"] == "rate_limited"
    assert first[2]["request_id"] != second[2]["request_id"]


def test_budgeted_caps_come_from_the_settings_when_the_limit_allows(caplog):
    """Well within the descriptor limit: the configured caps, and one log line saying so."""
    settings = load_settings(
        environ={
            "FRONTDOOR_SERVER_MAX_CONNECTIONS": "40",
            "FRONTDOOR_SERVER_MAX_CONNECTIONS_PER_IP": "7",
        }
    )
    with caplog.at_level(logging.INFO, logger="frontdoor.connections"):
        limits = budgeted(settings.server, [10, 10], embedded=False)
    assert (limits.max_total, limits.max_per_ip) == (40, 7)
    (record,) = caplog.records
    fields = getattr(record, FIELDS_ATTR)
    assert fields["event"] == "descriptor_budget"
    assert fields["max_connections"] == 40
    assert fields["reserved"] == 64 + 20


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _filled(clock: _Clock, count: int = 3) -> tuple[ConnectionLimits, list[str]]:
    """A process full of connections from different addresses that sent nothing yet;
    the list records which were shut down."""
    limits = ConnectionLimits(max_total=count, max_per_ip=10, evict_after_s=1.0, clock=clock)
    shut: list[str] = []
    for n in range(count):
        ip = f"10.0.0.{n}"
        assert limits.admit(ip, (ip, "1000"), lambda ip=ip: shut.append(ip))
        clock.now += 0.1
    return limits, shut


def test_a_full_process_shuts_down_the_oldest_silent_connection_for_a_newcomer():
    """At the total cap, the connection that has waited longest without a request is shut
    down and the newcomer admitted; the evicted one counts until it is released."""
    clock = _Clock()
    limits, shut = _filled(clock)
    clock.now += 1.0
    assert limits.admit("10.9.9.9", ("10.9.9.9", "1"), lambda: shut.append("new"))
    assert shut == ["10.0.0.0"]
    assert (limits.open, limits.evicted, limits.refused_total) == (4, 1, 0)
    limits.release("10.0.0.0", ("10.0.0.0", "1000"))  # its greenlet closes it
    assert (limits.open, limits.waiting) == (3, 3)


def test_a_connection_that_sent_a_request_is_never_evicted():
    """Once a request arrived on it (``begun``), a connection is not shut down: with every
    connection in use, the newcomer is refused (503)."""
    clock = _Clock()
    limits, shut = _filled(clock)
    for n in range(3):
        limits.begun((f"10.0.0.{n}", "1000"))
    clock.now += 10.0
    assert limits.admit("10.9.9.9", ("10.9.9.9", "1"), lambda: None) is False
    assert shut == []
    assert limits.refused_total == 1
    assert b" 503 " in limits.refusal("10.9.9.9")


def test_a_connection_younger_than_evict_after_s_is_not_evicted():
    """A client gets ``evict_after_s`` to send its first request."""
    clock = _Clock()
    limits, shut = _filled(clock)
    clock.now += 0.5  # the oldest has waited 0.8 s
    assert limits.admit("10.9.9.9", ("10.9.9.9", "1"), lambda: None) is False
    assert shut == []


def test_evictions_stop_while_too_many_evicted_connections_are_still_closing():
    """Evicted connections count until released: at most EVICTION_SLACK beyond the cap."""
    clock = _Clock()
    limits, shut = _filled(clock, count=EVICTION_SLACK + 5)
    clock.now += 5.0
    admitted = [
        limits.admit(f"10.1.0.{n}", (f"10.1.0.{n}", "1"), lambda: None)
        for n in range(EVICTION_SLACK + 1)
    ]
    assert admitted == [True] * EVICTION_SLACK + [False]
    assert limits.open == limits.max_total + EVICTION_SLACK
    assert len(shut) == EVICTION_SLACK


def test_an_address_over_its_cap_evicts_nothing():
    clock = _Clock()
    limits = ConnectionLimits(max_total=2, max_per_ip=1, evict_after_s=0.0, clock=clock)
    shut: list[str] = []
    assert limits.admit("a", ("a", "1"), lambda: shut.append("a"))
    assert limits.admit("b", ("b", "1"), lambda: shut.append("b"))
    assert limits.admit("a", ("a", "2"), lambda: None) is False
    assert shut == []
    assert limits.refused_per_ip == 1


def test_wrap_marks_the_connection_of_each_request_as_begun():
    """The WSGI wrapper takes the connection out of the evictable ones and calls the app."""
    limits = ConnectionLimits(max_total=5, max_per_ip=5)
    limits.admit("10.0.0.1", ("10.0.0.1", "5555"), lambda: None)
    limits.admit("10.0.0.2", ("10.0.0.2", "5555"), lambda: None)
    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        return [b"ok"]

    wrapped = limits.wrap(app)
    environ = {"REMOTE_ADDR": "10.0.0.1", "REMOTE_PORT": "5555", "PATH_INFO": "/x"}
    assert wrapped(environ, None) == [b"ok"]
    assert calls == ["/x"]
    assert limits.waiting == 1
