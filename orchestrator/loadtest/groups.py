"""Client groups: several clients in one run, each its own member, source address and rate.

A scenario's ``[[clients]]`` tables (``scenario.py``) name groups such as a flooder and a
normal device. Each arrival of the run's open-loop schedule (at the groups' summed rate)
is given to a group with probability rate / total, so each group's arrivals are its own
Poisson stream at its own rate; the group's ``Mix`` builds the request (every member
request with the group's member token, when it names one), the runner sends it from the
group's source address (a loopback address of its own: Linux routes all of 127/8 to lo),
and it is recorded under ``<group>:<endpoint>``. ``summarize`` folds a report's endpoints
back into one row per group: success rate (2xx of all scheduled), p50/p99, and the 429s
and 503s that said why the rest failed.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.loadtest.mix import Mix, PlannedRequest
from orchestrator.loadtest.stats import Cell

__all__ = ["SEPARATOR", "ClientGroup", "GroupMix", "group_of", "summarize"]

#: Between a group's name and the endpoint in a recorded endpoint name.
SEPARATOR = ":"


@dataclass(frozen=True, slots=True)
class ClientGroup:
    """One client of a run: its rate, and optionally its member, address and mix."""

    name: str
    rate: float
    #: Every member request carries this member's token (None: a random member each).
    member: str | None = None
    #: The loopback address its connections come from (None: the system's choice).
    source: str | None = None
    #: Endpoint weights (None: the scenario's mix).
    mix: Mapping[str, float] | None = None


class GroupMix:
    """Draws the group of each arrival by rate, then that group's next request."""

    def __init__(self, groups: Sequence[tuple[ClientGroup, Mix]], rng: random.Random) -> None:
        if not groups or any(group.rate <= 0 for group, _ in groups):
            raise ValueError("client groups need a rate > 0 each")
        self._groups = list(groups)
        self._cumulative = list(itertools.accumulate(group.rate for group, _ in groups))
        self._rng = rng

    def next(self) -> PlannedRequest:
        """The next request, tagged with its group's name and source address."""
        point = self._rng.random() * self._cumulative[-1]
        group, mix = self._groups[bisect.bisect_right(self._cumulative, point)]
        request = mix.next()
        return dataclasses.replace(
            request,
            endpoint=f"{group.name}{SEPARATOR}{request.endpoint}",
            source=group.source or "",
        )


def group_of(endpoint: str) -> str | None:
    """The group a recorded endpoint name belongs to (None: a run without groups)."""
    group, separator, _ = endpoint.partition(SEPARATOR)
    return group if separator else None


def summarize(totals: Mapping[str, Cell]) -> dict[str, dict[str, Any]]:
    """One summary per group from each recorded endpoint's whole-run ``Cell``: scheduled,
    2xx, 429 ``rate_limited``, 503 ``overloaded``, anything else, success %, p50/p99 ms."""
    cells: dict[str, Cell] = {}
    for endpoint, total in totals.items():
        group = group_of(endpoint)
        if group is not None:
            cells.setdefault(group, Cell()).merge(total)
    summaries: dict[str, dict[str, Any]] = {}
    for group, cell in sorted(cells.items()):
        count = cell.count
        ok = cell.statuses.get("2xx", 0)
        limited = cell.retry_after.get("429 rate_limited", 0)
        shed = cell.retry_after.get("503 overloaded", 0)
        summaries[group] = {
            "count": count,
            "ok": ok,
            "rate_limited": limited,
            "shed": shed,
            "other": count - ok - limited - shed,
            "success_percent": round(100.0 * ok / count, 2) if count else 0.0,
            "p50_ms": cell.latency.percentile_ms(50.0),
            "p99_ms": cell.latency.percentile_ms(99.0),
        }
    return summaries
