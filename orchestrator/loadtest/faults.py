"""The fault timeline: applies a scenario's ``FaultEvent``\\ s to the simulated microservices
through their admin API (``PUT``/``DELETE /_faults/{service}``, ``DELETE /_faults``), each at
its offset, and records when each was actually applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from orchestrator.loadtest.client import HttpClient, RequestError
from orchestrator.loadtest.phase import FaultEvent
from orchestrator.loadtest.report import AppliedFault

__all__ = ["FaultApiError", "FaultTimeline", "apply_event"]

_JSON = (("Content-Type", "application/json"),)


class FaultApiError(Exception):
    """The admin API refused or did not answer a fault change."""


def apply_event(admin: HttpClient, event: FaultEvent) -> None:
    """Set or heal one fault now; ``FaultApiError`` if the admin API did not say 200."""
    headers: tuple[tuple[str, str], ...]
    if event.fault is not None and event.service is not None:
        body = json.dumps(dict(event.fault)).encode()
        method, path, headers = "PUT", f"/_faults/{event.service}", _JSON
    else:
        method, headers, body = "DELETE", (), None
        path = "/_faults" if event.service is None else f"/_faults/{event.service}"
    try:
        response = admin.request(method, path, headers, body)
    except RequestError as exc:
        raise FaultApiError(f"{method} {path}: {exc}") from exc
    if response.status != 200:  # noqa: PLR2004 - the admin API's success
        detail = response.body[:200].decode("utf-8", "replace")
        raise FaultApiError(f"{method} {path}: HTTP {response.status} {detail}")


class FaultTimeline:
    """Runs the events of one scenario against one admin API, in order, on a clock."""

    def __init__(
        self,
        admin: HttpClient,
        events: Sequence[FaultEvent],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.admin = admin
        self.events = tuple(sorted(events, key=lambda event: event.at_s))
        self.applied: list[AppliedFault] = []
        self._clock = clock
        self._sleep = sleep

    def run(self, start: float) -> None:
        """Apply each event at ``start + at_s`` (a greenlet body; kill it to stop early)."""
        for event in self.events:
            delay = start + event.at_s - self._clock()
            if delay > 0:
                self._sleep(delay)
            try:
                apply_event(self.admin, event)
            except FaultApiError as exc:
                self.applied.append(
                    AppliedFault(event.at_s, None, event.service, event.fault, str(exc))
                )
            else:
                applied_s = round(self._clock() - start, 3)
                self.applied.append(AppliedFault(event.at_s, applied_s, event.service, event.fault))

    def heal_all(self) -> str | None:
        """Remove every fault (a run never leaves the services broken); the error, if any."""
        try:
            apply_event(self.admin, FaultEvent(0.0, None))
        except FaultApiError as exc:
            return str(exc)
        return None
