"""Health routes: ``/healthz`` (the process answers) and ``/readyz`` (it should get traffic).

Answered before admission control, even while the process sheds or drains: a load balancer
must see a busy process as alive, and a draining one as not ready. Not observed (``PATHS``):
probes every second would drown the access log.
"""

from __future__ import annotations

from typing import Final, Protocol

from orchestrator.frontend.request import Request, StartResponse
from orchestrator.frontend.respond import Responder

__all__ = ["PATHS", "Health", "Running"]

#: The health routes.
PATHS: Final = frozenset({"/healthz", "/readyz"})


class Running(Protocol):
    """Whether the backends' actors are up (the actor system)."""

    @property
    def running(self) -> bool:
        """Backend actors are up."""
        ...


class Health:
    """Ready while ``backends`` run and the process is not ``draining``."""

    __slots__ = ("_backends", "_respond", "draining")

    def __init__(self, backends: Running, respond: Responder) -> None:
        self._backends = backends
        self._respond = respond
        #: Set when the server starts draining: ``/readyz`` answers 503 from then on.
        self.draining = False

    def serve(self, start_response: StartResponse, request: Request) -> list[bytes] | None:
        """The response when ``request`` is a health probe; None otherwise."""
        if request.path == "/healthz":
            return self._respond.json(start_response, request, 200, {"status": "ok"})
        if request.path == "/readyz":
            ready = self._backends.running and not self.draining
            body = {"ready": ready, "draining": self.draining}
            return self._respond.json(start_response, request, 200 if ready else 503, body)
        return None
