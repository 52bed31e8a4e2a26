"""Shared by the in-process microbenchmarks (hot_path, limits_cost, request_id_cost):
the timing rule and a plans reply of the simulated shape."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: A ``plans`` service reply for one country, as the non-member endpoints read it.
PLANS = {
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


def best_us(function: Callable[[], Any], number: int, runs: int) -> float:
    """CPU µs per call of ``function``: the best of ``runs`` runs of ``number`` calls."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        for _ in range(number):
            function()
        best = min(best, time.process_time() - started)
    return best / number * 1e6
