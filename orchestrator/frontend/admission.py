"""Admission control: a bound on requests in flight in this process, shared fairly.

Beyond the bound a request is shed with 503 and ``Retry-After`` before any backend work,
so rejection costs microseconds while admitted requests keep their latency. A request is
admitted once its body has arrived (the app reads it first): a slow body holds no slot.

Fairness. Requests name their client (``ratelimit.Client``: a member, else an address) and
each client's slots in flight are counted. The last quarter of the bound is headroom:
while more than three quarters of it are taken, a client already holding at least its fair
share, ``max_inflight // (clients holding slots + 1)`` (room kept for one more client), is
shed; a client holding none is admitted while any slot is free. So one client flooding at
any rate holds at most three quarters of the slots and everyone else still gets in, while
a lone client (or many well-behaved ones) can use the whole bound but its last quarter.
Requests without a client (``None``) are bounded but not counted per client.

Under gevent there is no preemption between the checks and the increments: no lock needed.
Per-client counts exist only for clients with requests in flight: at most ``max_inflight``.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["Admission"]


class Admission:
    """Counts requests in flight; ``try_enter`` fails once ``max_inflight`` are running, or
    (with ``fair``) when a client over its share asks while the headroom is in use."""

    __slots__ = ("_busy", "_held", "inflight", "max_inflight", "shed", "shed_unfair")

    def __init__(self, max_inflight: int, *, fair: bool = True) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be >= 1")
        self.max_inflight = max_inflight
        self.inflight = 0
        self.shed = 0
        #: Of ``shed``, those refused for holding more than their share.
        self.shed_unfair = 0
        #: In flight from here on, clients over their share are shed.
        self._busy = max_inflight - max_inflight // 4
        self._held: dict[Hashable, int] | None = {} if fair else None

    def try_enter(self, client: Hashable | None = None) -> bool:
        """Admit one request of ``client``, or count it as shed."""
        inflight = self.inflight
        if inflight >= self.max_inflight:
            self.shed += 1
            return False
        held_by = self._held
        if client is not None and held_by is not None:
            held = held_by.get(client, 0)
            if held and inflight >= self._busy and held >= self.max_inflight // (len(held_by) + 1):
                self.shed += 1
                self.shed_unfair += 1
                return False
            held_by[client] = held + 1
        self.inflight = inflight + 1
        return True

    def leave(self, client: Hashable | None = None) -> None:
        """An admitted request of ``client`` finished."""
        self.inflight -= 1
        held_by = self._held
        if client is not None and held_by is not None:
            held = held_by[client] - 1
            if held:
                held_by[client] = held
            else:
                del held_by[client]

    def held(self, client: Hashable) -> int:
        """Slots ``client`` holds now."""
        return 0 if self._held is None else self._held.get(client, 0)
