"""Fault board, call counter, admin API and the bounded cache, without sockets."""

from __future__ import annotations

import json

import pytest

from backends.simulated import SERVICES, Fault
from backends.simulated.admin import AdminApi
from backends.simulated.cache import LruCache
from backends.simulated.control import CallCounter, FaultBoard
from backends.simulated.exchange import Request


@pytest.fixture
def board() -> FaultBoard:
    return FaultBoard()


@pytest.fixture
def counter() -> CallCounter:
    return CallCounter()


@pytest.fixture
def admin(board, counter) -> AdminApi:
    return AdminApi(board, counter)


def test_replacing_or_healing_a_fault_releases_its_waiters(board):
    """The old slot's release event fires; the new slot starts unreleased."""
    board.set("catalog", Fault(hang=True))
    held = board.slot("catalog")
    board.set("catalog", Fault(error_rate=1.0))
    assert held.released.is_set()
    replaced = board.slot("catalog")
    assert not replaced.released.is_set()
    board.heal()
    assert replaced.released.is_set()
    assert board.active() == {}


def test_active_lists_only_misbehaving_services(board):
    """Healthy services are left out."""
    board.set("search", Fault(latency_ms=5))
    board.set("ratings", Fault())
    assert board.active() == {"search": Fault(latency_ms=5)}
    board.heal("search")
    assert board.active() == {}


def test_counter_counts_per_service_and_resets(counter):
    """Counts start at zero for every service."""
    counter.add("catalog")
    counter.add("catalog")
    assert counter.get("catalog") == 2
    assert set(counter.snapshot()) == set(SERVICES)
    counter.reset()
    assert counter.get("catalog") == 0


def _admin(admin: AdminApi, method: str, *segments: str, body: object = None) -> tuple[int, dict]:
    raw = b"" if body is None else json.dumps(body).encode()
    response = admin.handle(Request(method, segments, {}, raw))
    return response.status, json.loads(response.body)


def test_admin_put_get_delete(admin, board):
    """PUT replaces a fault, GET shows it, DELETE heals it."""
    status, reply = _admin(admin, "PUT", "_faults", "catalog", body={"error_rate": 0.25})
    assert status == 200
    assert reply["fault"]["error_rate"] == 0.25
    assert board.slot("catalog").fault == Fault(error_rate=0.25)
    assert _admin(admin, "GET", "_faults")[1]["faults"]["catalog"]["error_rate"] == 0.25
    assert _admin(admin, "DELETE", "_faults", "catalog")[1] == {"service": "catalog", "fault": None}
    assert _admin(admin, "GET", "_faults")[1] == {"faults": {}}


def test_admin_refuses_bad_faults_naming_the_key(admin, board):
    """Validation errors are 400 with the key; the previous fault stays."""
    _admin(admin, "PUT", "_faults", "search", body={"hang": True})
    status, reply = _admin(admin, "PUT", "_faults", "search", body={"hang": "yes"})
    assert status == 400
    assert reply["key"] == "hang"
    assert board.slot("search").fault == Fault(hang=True)
    assert _admin(admin, "PUT", "_faults", "nosuch", body={})[0] == 404
    assert _admin(admin, "POST", "_faults", "search", body={})[0] == 405
    assert _admin(admin, "GET", "_nothing")[0] == 404


def test_admin_heals_all_and_resets_stats(admin, board, counter):
    """DELETE /_faults heals everything; DELETE /_stats zeroes the counts."""
    board.set("catalog", Fault(refuse=True))
    board.set("plans", Fault(malformed=True))
    assert _admin(admin, "DELETE", "_faults") == (200, {"faults": {}})
    counter.add("plans")
    assert _admin(admin, "GET", "_stats")[1]["requests"]["plans"] == 1
    assert _admin(admin, "DELETE", "_stats")[1]["requests"]["plans"] == 0
    assert _admin(admin, "GET", "_health") == (200, {"status": "ok"})


def test_lru_cache_drops_the_least_recently_used():
    """A read refreshes an entry; the oldest untouched one goes first."""
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get_or_build("a", lambda _: 99) == 1
    assert len(cache) == 2
    with pytest.raises(ValueError, match="capacity"):
        LruCache(0)
