"""The fault timeline: applies a scenario's ``FaultEvent``\\ s to the simulated microservices
through their admin API (``PUT``/``DELETE /_faults/{service}``, ``DELETE /_faults``), each at
its offset, and records when each was actually applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from orchestrator.loadtest.client import HttpClient, RequestError
from orchestrator.loadtest.phase import FaultEvent, PhaseMap
from orchestrator.loadtest.report import AppliedFault

__all__ = ["FaultApiError", "FaultTimeline", "FaultWatch", "apply_event", "check_fault_api"]

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


def check_fault_api(admin: HttpClient) -> None:
    """Preflight: ``GET /_faults`` must answer 200 with ``{"faults": {...}}``, which only the
    simulated services' admin API does; ``FaultApiError`` says what answered instead."""
    try:
        response = admin.request("GET", "/_faults")
    except RequestError as exc:
        raise FaultApiError(f"GET /_faults: {exc}") from exc
    try:
        listing = json.loads(response.body) if response.status == 200 else None  # noqa: PLR2004
    except ValueError:
        listing = None
    if not isinstance(listing, dict) or not isinstance(listing.get("faults"), dict):
        detail = response.body[:120].decode("utf-8", "replace")
        raise FaultApiError(
            f"GET /_faults: HTTP {response.status} {detail!r} is not the simulated services' "
            "fault API"
        )


class FaultTimeline:
    """Runs the events of one scenario against one admin API, in order, on a clock."""

    def __init__(
        self,
        admin: HttpClient,
        events: Sequence[FaultEvent],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        on_error: Callable[[AppliedFault], None] | None = None,
    ) -> None:
        self.admin = admin
        #: Called at once with an event the admin API refused or did not answer.
        self.on_error = on_error
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
                failed = AppliedFault(event.at_s, None, event.service, event.fault, str(exc))
                self.applied.append(failed)
                if self.on_error is not None:
                    self.on_error(failed)
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


class FaultWatch:
    """What a run does about a fault the admin API did not apply (``FaultTimeline``'s
    ``on_error``): the phase it was to start is invalid (its name says a fault that was not
    there), and with ``abort`` the run is stopped at once."""

    def __init__(
        self, phases: PhaseMap, warmup_s: float, stop: Callable[[], None], *, abort: bool
    ) -> None:
        #: Invalid phases by name, with the reason.
        self.invalid: dict[str, str] = {}
        #: Why the run was stopped, or None.
        self.aborted: str | None = None
        self._phases, self._warmup_s, self._stop, self._abort = phases, warmup_s, stop, abort

    def failed(self, fault: AppliedFault) -> None:
        """A fault change that did not happen."""
        reason = f"the fault at {fault.at_s:g} s was not applied"
        # An event in the warmup sets the state the first phase starts in.
        phase = self._phases.phases[self._phases.index(max(fault.at_s, self._warmup_s))]
        self.invalid.setdefault(phase.name, reason)
        if self._abort and self.aborted is None:
            self.aborted = reason
            self._stop()
