"""Last-good cache: fresh values served, stale ones not, bounded in size."""

from __future__ import annotations

from actors.last_good import LastGoodCache


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_serves_a_fresh_value_and_drops_a_stale_one():
    """Within the TTL the value is served; past it, it is gone."""
    clock = FakeClock()
    cache = LastGoodCache(max_entries=10, ttl_s=60, clock=clock)
    cache.put("k", {"v": 1})
    assert cache.get("k") == (True, {"v": 1})
    clock.now += 61
    assert cache.get("k") == (False, None)
    assert len(cache) == 0


def test_evicts_the_least_recently_stored_key_beyond_its_bound():
    """The cache never holds more than max_entries keys."""
    cache = LastGoodCache(max_entries=2, ttl_s=60, clock=FakeClock())
    for key in ("a", "b", "c"):
        cache.put(key, key)
    assert len(cache) == 2
    assert cache.get("a") == (False, None)
    assert cache.get("c") == (True, "c")
