"""The descriptor budget: device connections get what backend calls do not need.

Every open device connection is a file descriptor, and so is every backend connection,
under one per-process limit (``RLIMIT_NOFILE``, ``ulimit -n``). Left unchecked, slow device
connections take them all and backend calls fail with "Too many open files". So the backend
side's need is reserved first, and the device-connection cap is what is left:

- backends: one pooled connection per bulkhead slot, ``max_concurrent`` per backend (the
  bulkhead holds a slot until its attempt's connection is back in the pool; the transports
  keep at most that many: ``backends/gevent_transport.py``, ``requests_transport.py``);
  twice that when the simulated services run in the same process (their end of each
  connection is a descriptor too);
- ``FIXED_RESERVE`` more for the rest: standard streams, the event loop, the listeners,
  statsd's socket, log files, the resolver, files opened at run time.

``apply`` runs once at start-up (``frontdoor serve``, the gunicorn target): it raises the
soft limit toward the hard one when the configured cap and the reserve do not fit, then
caps device connections at ``min(server.max_connections, soft limit - reserve)``; when not
even ``minimum`` connections fit, ``DescriptorBudgetError`` says what to change.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from orchestrator.config import ConfigError

__all__ = [
    "FIXED_RESERVE",
    "DescriptorBudget",
    "DescriptorBudgetError",
    "apply",
    "backend_reserve",
    "plan",
]

#: Descriptors kept for everything but device and backend connections.
FIXED_RESERVE: Final = 64


class DescriptorBudgetError(ConfigError):
    """The descriptor limit leaves too few connections for devices; start-up must stop
    (a ``ConfigError`` about ``server.max_connections``, reported as the others are)."""

    def __init__(self, problem: str) -> None:
        super().__init__("server.max_connections", problem)


@dataclass(frozen=True, slots=True)
class DescriptorBudget:
    """What start-up decided: the limits, the reserve and the device-connection cap."""

    #: The soft limit now in force (raised from ``previous_soft`` when they differ).
    soft: int
    previous_soft: int
    hard: int
    #: Descriptors kept for backend connections and the process's own.
    reserve: int
    #: The device-connection cap: ``min(configured, soft - reserve)``.
    max_connections: int
    configured: int

    @property
    def raised(self) -> bool:
        """Whether the soft limit was raised."""
        return self.soft != self.previous_soft

    @property
    def clamped(self) -> bool:
        """Whether the cap is below ``server.max_connections``."""
        return self.max_connections < self.configured


def backend_reserve(max_concurrent: Iterable[int], *, embedded: bool) -> int:
    """Descriptors to keep for backends with these bulkhead sizes, and the process's own.

    ``embedded``: the simulated services run in this process and hold the other end.
    """
    pooled = sum(max_concurrent)
    return FIXED_RESERVE + pooled * (2 if embedded else 1)


def plan(configured: int, reserve: int, minimum: int, soft: int, hard: int) -> DescriptorBudget:
    """The budget for limits ``soft``/``hard`` (``RLIM_INFINITY`` allowed): the soft limit to
    ask for, and the cap. ``DescriptorBudgetError`` when fewer than ``minimum`` device
    connections fit even at the hard limit."""
    wanted = configured + reserve
    target = soft
    if _finite(soft) < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    room = _finite(target) - reserve
    if room < minimum:
        raise DescriptorBudgetError(
            f"the descriptor limit (ulimit -n: soft {_show(soft)}, hard {_show(hard)}) leaves "
            f"{max(room, 0)} device connections after {reserve} kept for backend calls; at "
            f"least {minimum} are needed (server.max_inflight). Raise the limit (ulimit -n "
            f"{minimum + reserve} or more), or lower backends' max_concurrent"
        )
    return DescriptorBudget(
        soft=target,
        previous_soft=soft,
        hard=hard,
        reserve=reserve,
        max_connections=min(configured, room),
        configured=configured,
    )


def apply(
    configured: int,
    reserve: int,
    minimum: int,
    *,
    getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
    setrlimit: Callable[[int, tuple[int, int]], None] = resource.setrlimit,
) -> DescriptorBudget:
    """Read ``RLIMIT_NOFILE``, raise the soft limit if the budget needs and the hard limit
    allows, and return the budget in force. When the kernel refuses the raise (its own
    ceiling, ``fs.nr_open``), the budget is planned again within the soft limit."""
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    budget = plan(configured, reserve, minimum, soft, hard)
    if budget.raised:
        try:
            setrlimit(resource.RLIMIT_NOFILE, (budget.soft, hard))
        except (OSError, ValueError):
            budget = plan(configured, reserve, minimum, soft, soft)
    return budget


def _finite(limit: int) -> int:
    # RLIM_INFINITY is -1 as a Python int on Linux; as a count it is unbounded.
    return 2**62 if limit == resource.RLIM_INFINITY else limit


def _show(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
