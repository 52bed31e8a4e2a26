"""The simulated services over real HTTP: one gevent stream server with a lean HTTP/1.1
handler (``connection.py``), one port, one path prefix per service.

``SimulatedBackends`` owns the lifecycle: build the world, listen, change faults, stop (which
first releases every hanging or dripping request, then closes every connection).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from gevent.pool import Pool
from gevent.server import StreamServer

from backends.simulated.app import DEFAULT_HANG_CAP_S, SimulatedApp
from backends.simulated.connection import ConnectionHandler
from backends.simulated.control import GateState
from backends.simulated.data import World
from backends.simulated.faults import Fault, LatencyModel
from backends.simulated.reference import DEFAULT_SEED, SERVICES
from backends.simulated.services import Services
from backends.simulated.store import Store


class SimulatedBackends:
    """The simulated microservices on one port of 127.0.0.1 (or any host), with fault control.

    ``SimulatedBackends(seed=7, latency_profile="none").start()`` returns once listening;
    ``url`` is then e.g. ``http://127.0.0.1:PORT`` and each service lives under ``/{name}/``.
    """

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        latency_profile: str = "none",
        latency_scale: float = 1.0,
        *,
        world: World | None = None,
        hang_cap_s: float = DEFAULT_HANG_CAP_S,
        clock: Callable[[], float] = time.time,
        access_log: logging.Logger | None = None,
    ) -> None:
        if world is not None and world.seed != seed:
            raise ValueError("world was built from another seed")
        self.world = World(seed) if world is None else world
        self.app = SimulatedApp(
            Services(self.world, Store(seed, clock)),
            LatencyModel.from_profile(latency_profile, latency_scale),
            seed=seed,
            hang_cap_s=hang_cap_s,
        )
        self._access_log = access_log
        self._server: StreamServer | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, host: str = "127.0.0.1", port: int = 0) -> SimulatedBackends:
        """Bind and listen (port 0 picks a free port); returns once connections are accepted."""
        if self._server is not None:
            raise RuntimeError("already started")
        server = StreamServer(
            (host, port),
            ConnectionHandler(self.app.answer, self.app.inflight, self._access_log),
            backlog=2048,
            # A pool, unlike the default spawn, lets stop() end every connection's greenlet.
            spawn=Pool(),
        )
        self.app.open()
        server.start()
        self._server = server
        return self

    @property
    def port(self) -> int:
        """The port listened on; ``RuntimeError`` before ``start``."""
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9090``."""
        if self._server is None:
            raise RuntimeError("not started")
        host = str(self._server.server_host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def set_fault(self, service: str, fault: Fault) -> None:
        """Make ``service`` misbehave as ``fault`` says (replacing its previous fault)."""
        self.app.board.set(_known(service), fault)

    def heal(self, service: str | None = None) -> None:
        """Make one service, or all, healthy; requests held by a fault are released."""
        self.app.board.heal(None if service is None else _known(service))

    def wait_held(self, service: str, timeout_s: float) -> bool:
        """Wait until the fault in force on ``service`` holds a request (hanging, waiting out
        added latency, or dripping); False if ``timeout_s`` passed first. Lets tests and load
        scripts synchronise without sleeping."""
        return bool(self.app.board.slot(_known(service)).holding.wait(timeout_s))

    def capacity(self, service: str) -> GateState:
        """The capacity gate of ``service`` now: its cap, requests served and queued."""
        return self.app.board.gate(_known(service)).state()

    def wait_capacity(
        self, service: str, condition: Callable[[GateState], bool], timeout_s: float
    ) -> bool:
        """Wait until ``condition`` holds for the gate of ``service`` (e.g. ``lambda gate:
        gate.waiting == 4``); False if ``timeout_s`` passed first. Lets tests synchronise on
        the queue without sleeping."""
        return self.app.board.gate(_known(service)).wait_for(condition, timeout_s)

    def faults(self) -> dict[str, Fault]:
        """Active faults per service."""
        return self.app.board.active()

    def calls(self, service: str) -> int:
        """Requests ``service`` received since start or the last ``reset_calls``."""
        return self.app.counter.get(_known(service))

    def reset_calls(self) -> None:
        """Reset every service's request count."""
        self.app.counter.reset()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop listening, release held requests, let the others finish within ``timeout_s``,
        then close every connection (idle keep-alive ones at once)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.app.close()
        if server is not None:
            self.app.inflight.wait_idle(timeout_s)
            server.stop(timeout=0)


def _known(service: str) -> str:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    return service
