"""The admin API of the simulated services: faults, call counts, health.

- ``GET /_faults``: active faults; ``DELETE /_faults``: heal all.
- ``PUT /_faults/{service}`` (a ``Fault`` as JSON; replaces the previous one),
  ``GET`` it, ``DELETE`` it (heal).
- ``GET /_stats``: requests per service, and under ``capacity`` the gate of every service
  with a cap or a queue (``capacity``, ``queue_limit``, ``serving``, ``waiting``, and since
  the last reset ``rejected`` and ``peak_waiting``); ``DELETE /_stats``: reset the counts.
- ``GET /_health``: 200.
"""

from __future__ import annotations

from dataclasses import asdict

from backends.simulated.control import CallCounter, FaultBoard
from backends.simulated.exchange import HttpError, Request, Response, allow, error, ok
from backends.simulated.faults import Fault, FaultError

#: First path segments the admin API owns (never a service name).
ADMIN_PREFIXES = frozenset({"_faults", "_stats", "_health"})


class AdminApi:
    """Reads and changes a fault board and a call counter."""

    def __init__(self, board: FaultBoard, counter: CallCounter) -> None:
        self._board = board
        self._counter = counter

    def handle(self, request: Request) -> Response:
        """Answer one admin request (``segments`` is the whole path)."""
        try:
            return self._route(request)
        except HttpError as exc:
            return error(exc.status, exc.message)

    def _route(self, request: Request) -> Response:
        match request.segments:
            case ("_health",):
                allow(request, "GET")
                return ok({"status": "ok"})
            case ("_stats",):
                allow(request, "GET", "DELETE")
                if request.method == "DELETE":
                    self._counter.reset()
                    self._board.reset_gate_counts()
                return ok(self._stats())
            case ("_faults",):
                allow(request, "GET", "DELETE")
                if request.method == "DELETE":
                    self._board.heal()
                return ok(self._listing())
            case ("_faults", service):
                return self._one(request, service)
            case _:
                return error(404, "not found")

    def _one(self, request: Request, service: str) -> Response:
        allow(request, "GET", "PUT", "DELETE")
        if service not in self._board:
            return error(404, "unknown service")
        if request.method == "PUT":
            try:
                fault = Fault.from_json(request.json_object())
            except FaultError as exc:
                return ok({"error": str(exc), "key": exc.key}, 400)
            self._board.set(service, fault)
        elif request.method == "DELETE":
            self._board.heal(service)
        fault = self._board.slot(service).fault
        return ok({"service": service, "fault": fault.to_json() if fault.active else None})

    def _stats(self) -> dict[str, object]:
        gates = {name: asdict(state) for name, state in self._board.gates().items()}
        return {"requests": self._counter.snapshot(), "capacity": gates}

    def _listing(self) -> dict[str, object]:
        return {"faults": {name: fault.to_json() for name, fault in self._board.active().items()}}
