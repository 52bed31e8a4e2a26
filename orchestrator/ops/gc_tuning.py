"""Garbage-collector settings for a serving process.

CPython's cyclic collector stops the whole process, every greenlet included, while it runs.
Objects that live through two young collections (a request's objects are alive for its
whole ~100 ms) are promoted to the oldest generation, and each 25% growth of that
generation triggers a full collection that walks the entire heap: with the embedded
simulated services' data in the same process, 30-50 ms stalls every 2-3 s at 100 req/s.

Frontdoor's request path leaves no cyclic garbage (reference counting frees it; see the
``test_a_scope_is_freed_by_reference_counting_alone`` regression test), so collections
find nothing to free and only cost pauses. ``tune`` therefore:

- freezes everything built at start-up (configuration, plans, the simulated catalogue) into
  the permanent generation, which collections no longer walk (and which a forking server
  then shares copy-on-write);
- raises the young threshold from 700 allocations to ``young_threshold``, and the older
  generations' from 10 to 20, so far fewer objects are promoted while still in flight.

Measured (``bin/serve``, realistic latency, 100 req/s, 25 s): pauses over 5 ms went from 11
(13-48 ms) with Python's defaults to 2 (5.2 and 5.4 ms).
"""

from __future__ import annotations

import gc

__all__ = ["OLDER_THRESHOLD", "tune"]

#: Young-generation collections between older-generation collections (Python's default: 10).
OLDER_THRESHOLD = 20


def tune(young_threshold: int) -> None:
    """Freeze the start-up heap and set the thresholds; ``0`` leaves Python's defaults."""
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, OLDER_THRESHOLD, OLDER_THRESHOLD)
