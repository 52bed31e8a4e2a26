"""Caps on open device connections: in all, and per client IP.

A connection costs a descriptor and a greenlet for as long as it is open, whether or not a
request ever completes on it, so admission control per request (``admission.py``) does not
bound them: a client that opens thousands of connections and sends nothing (slowloris) holds
them all. ``ConnectionLimits`` counts what is open, per process and per client address, and
refuses a new connection past either cap; the server (``httpserver.NoDelayWSGIServer``)
asks ``admit`` as it accepts and calls ``release`` once the connection is closed. The total
cap is sized by the descriptor budget (``orchestrator/ops/descriptors.py``), so device
connections can never take the descriptors backend calls need.

A full process does not simply refuse newcomers, or slow connections from many addresses
would lock every other client out: the oldest connection that has sent no request for
``EVICT_AFTER_S`` is shut down to make room (a slowloris connection never sends one; a
client's connection does within a round trip, and from then on is never evicted). Only
when no connection can be evicted is the newcomer refused.

One greenlet at a time runs this code (gevent), and nothing in it yields: no lock.
``refusal`` is the bytes written to a refused connection before it is closed: a 503
``overloaded`` (over the total cap) or a 429 ``rate_limited`` (over the per-IP cap), as
``application/problem+json`` with a fresh request id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeAlias

from orchestrator.config import ServerSettings
from orchestrator.frontend.problems import CONTENT_TYPE, Problem
from orchestrator.frontend.request_ids import request_id
from orchestrator.ops.access_log import FIELDS_ATTR
from orchestrator.ops.descriptors import apply, backend_reserve

__all__ = [
    "EVICTION_SLACK",
    "EVICT_AFTER_S",
    "RETRY_AFTER_S",
    "ConnectionLimits",
    "budgeted",
    "install",
    "installed",
]

log = logging.getLogger("frontdoor.connections")

#: ``Retry-After`` of a refused connection, in seconds.
RETRY_AFTER_S: Final = 1
#: A full process shuts down a connection that has sent no request for this long to make
#: room for a new one: far longer than a client takes to send its request after connecting.
EVICT_AFTER_S: Final = 1.0
#: Evicted connections still closing that may be counted beyond the total cap (each is
#: closed on its greenlet's next turn; the descriptor budget's fixed part covers them).
EVICTION_SLACK: Final = 16

_WsgiApp: TypeAlias = Callable[[Any, Any], Iterable[bytes]]


def _refusal_parts(problem: Problem) -> tuple[bytes, bytes, bytes]:
    """The response to a refused connection around its request id: head, body up to the
    id, body after it. Request ids are 32 hex digits (``request.request_id``), so the
    ``Content-Length`` is fixed."""
    marker = "R" * 32
    before, _, after = problem.to_body(marker).decode("ascii").partition(marker)
    headers = "".join(f"{name}: {value}\r\n" for name, value in problem.headers.items())
    head = (
        f"HTTP/1.1 {problem.status_line}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {len(before) + len(marker) + len(after)}\r\n"
        f"{headers}"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii"), before.encode("ascii"), after.encode("ascii")


class ConnectionLimits:
    """Open device connections, counted in all and per client IP, each under a cap; when
    the process is full, the oldest connection still waiting for its first request makes
    way for a new one.

    ``admit(ip, key, shutdown)`` takes a place (False: refuse the connection, nothing was
    counted); every admitted connection must be ``release``d exactly once, when it closes.
    ``key`` (the peer's (ip, port) as text, as ``REMOTE_ADDR``/``REMOTE_PORT`` give it)
    and ``shutdown`` make the connection evictable until ``begun`` says its first request
    has arrived (``wrap`` calls it, once per request).
    """

    __slots__ = (
        "_clock",
        "_per_ip",
        "_waiting",
        "evict_after_s",
        "evicted",
        "max_per_ip",
        "max_total",
        "open",
        "refused_per_ip",
        "refused_total",
    )

    def __init__(
        self,
        max_total: int,
        max_per_ip: int,
        *,
        evict_after_s: float = EVICT_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_total < 1 or max_per_ip < 1:
            raise ValueError("connection caps must be >= 1")
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.evict_after_s = evict_after_s
        self._clock = clock
        #: Connections open now (evicted ones count until they are closed).
        self.open = 0
        #: Since start: refused over the total cap, over a client's cap; evicted.
        self.refused_total = 0
        self.refused_per_ip = 0
        self.evicted = 0
        self._per_ip: dict[str, int] = {}
        #: Connections without a request yet, oldest first: when they came, how to end them.
        self._waiting: dict[tuple[str, str], tuple[float, Callable[[], None]]] = {}

    def admit(
        self,
        ip: str | None,
        key: tuple[str, str] | None = None,
        shutdown: Callable[[], None] | None = None,
    ) -> bool:
        """Count a new connection from ``ip``; False (and nothing counted) past a cap.

        ``ip`` None (a Unix socket's peer, which has no address): the total cap only. At the
        total cap, the oldest connection that has waited ``evict_after_s`` without sending
        a request is shut down to make room (``shutdown``; it is released when closed).
        """
        if ip is not None:
            held = self._per_ip.get(ip, 0)
            if held >= self.max_per_ip:
                self.refused_per_ip += 1
                return False
        if self.open >= self.max_total and not self._evict():
            self.refused_total += 1
            return False
        if ip is not None:
            self._per_ip[ip] = held + 1
        self.open += 1
        if key is not None and shutdown is not None:
            self._waiting[key] = (self._clock(), shutdown)
        return True

    def begun(self, key: tuple[str, str]) -> None:
        """A request arrived on connection ``key``: it is no longer evictable."""
        self._waiting.pop(key, None)

    def release(self, ip: str | None, key: tuple[str, str] | None = None) -> None:
        """An admitted connection from ``ip`` closed."""
        self.open -= 1
        if key is not None:
            self._waiting.pop(key, None)
        if ip is None:
            return
        held = self._per_ip[ip] - 1
        if held:
            self._per_ip[ip] = held
        else:
            del self._per_ip[ip]  # the table holds only addresses with connections open

    def _evict(self) -> bool:
        """Shut down the oldest connection still without a request, if it has waited long
        enough and not too many evicted ones are still closing; True if one was."""
        if self.open >= self.max_total + EVICTION_SLACK:
            return False
        oldest = next(iter(self._waiting.items()), None)
        if oldest is None or self._clock() - oldest[1][0] < self.evict_after_s:
            return False
        del self._waiting[oldest[0]]
        self.evicted += 1
        oldest[1][1]()
        return True

    def held_by(self, ip: str) -> int:
        """Connections open from ``ip``."""
        return self._per_ip.get(ip, 0)

    @property
    def clients(self) -> int:
        """Client addresses with at least one connection open."""
        return len(self._per_ip)

    @property
    def waiting(self) -> int:
        """Connections open that have not sent a request yet."""
        return len(self._waiting)

    def refusal(self, ip: str | None) -> bytes:
        """What to write to a connection ``admit`` just refused: 429 when ``ip`` is over
        its own cap, else 503 (the process is full)."""
        head, before, after = (
            _PER_IP if ip is not None and self.held_by(ip) >= self.max_per_ip else _TOTAL
        )
        return b"".join((head, before, request_id(None).encode("ascii"), after))

    def wrap(self, app: _WsgiApp) -> _WsgiApp:
        """``app``, telling these limits when a request arrives on a connection (``begun``)."""
        begun = self.begun

        def arrived(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            begun((environ.get("REMOTE_ADDR", ""), environ.get("REMOTE_PORT", "")))
            return app(environ, start_response)

        return arrived


_TOTAL: Final = _refusal_parts(
    Problem(
        "overloaded",
        "Too many connections are open; retry later.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
)
_PER_IP: Final = _refusal_parts(
    Problem(
        "rate_limited",
        "Too many connections are open from this address; close some or retry later.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
)


def budgeted(
    server: ServerSettings, backend_slots: Iterable[int], *, embedded: bool
) -> ConnectionLimits:
    """This process's caps, within its descriptor budget (``orchestrator/ops/descriptors.py``:
    raises the soft limit when needed; ``DescriptorBudgetError`` when even
    ``server.max_inflight`` connections do not fit). ``backend_slots``: every backend's
    ``max_concurrent``; ``embedded``: the simulated services run in this process."""
    budget = apply(
        server.max_connections,
        backend_reserve(backend_slots, embedded=embedded),
        minimum=server.max_inflight,
    )
    fields = {
        "event": "descriptor_budget",
        "nofile_soft": budget.soft,
        "nofile_hard": budget.hard,
        "nofile_raised_from": budget.previous_soft if budget.raised else None,
        "reserved": budget.reserve,
        "max_connections": budget.max_connections,
        "max_connections_per_ip": min(server.max_connections_per_ip, budget.max_connections),
    }
    if budget.clamped:
        log.warning(
            "server.max_connections lowered from %d to %d: the descriptor limit (%d) keeps %d "
            "for backend calls; raise ulimit -n to allow more",
            budget.configured,
            budget.max_connections,
            budget.soft,
            budget.reserve,
            extra={FIELDS_ATTR: fields},
        )
    else:
        log.info("descriptor budget", extra={FIELDS_ATTR: fields})
    return ConnectionLimits(
        budget.max_connections, min(server.max_connections_per_ip, budget.max_connections)
    )


#: The process's caps, for a server its entry point does not build (gunicorn's worker).
_INSTALLED: list[ConnectionLimits] = []


def install(limits: ConnectionLimits) -> None:
    """Make ``limits`` the caps of device listeners built without their own (the gunicorn
    target installs them; ``gunicorn_worker.FrontdoorServer`` uses them)."""
    _INSTALLED[:] = [limits]


def installed() -> ConnectionLimits | None:
    """The caps ``install`` set in this process, if any."""
    return _INSTALLED[0] if _INSTALLED else None
