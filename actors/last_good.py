"""A bounded cache of the last good value per call key, with a time to live.

Serves ``Fallback.last_good``: when a call fails, the most recent successful reply to the
same call (if still fresh) stands in for it. Bounded in entries (LRU) so a wide key space
cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class LastGoodCache:
    """LRU of ``key -> (stored_at, value)``; entries older than ``ttl_s`` are not served."""

    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float]) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: str, value: Any) -> None:
        """Remember ``value`` as the latest good answer for ``key``."""
        self._entries[key] = (self._clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` when a fresh value exists, else ``(False, None)``."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        stored_at, value = entry
        if self._clock() - stored_at > self.ttl_s:
            del self._entries[key]
            return False, None
        return True, value
