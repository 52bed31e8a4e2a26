"""What the API family tests share: a family's declarations by name, and a plan driver.

The driver runs a plan's pure state machine with canned replies: no actors, no sockets.
A plain module rather than a conftest fixture, since tests call these as functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.messages import Outcome, Reply
from actors.plan import PlanRun, RunResult
from orchestrator.plans import Endpoint, Step, StepContext


@dataclass(frozen=True, slots=True)
class Family:
    """One API family under test, and the member its steps run for (None: a public family)."""

    endpoints: Callable[[], tuple[Endpoint, ...]]
    member_id: str | None = "m1"

    def endpoint(self, name: str) -> Endpoint:
        """The family's endpoint called ``name``, freshly declared."""
        return {endpoint.name: endpoint for endpoint in self.endpoints()}[name]

    def steps(self, endpoint: str) -> dict[str, Step]:
        """The steps of ``endpoint``'s plan, by step name."""
        return {step.name: step for step in self.endpoint(endpoint).plan.steps}

    def ctx(self, params: dict[str, Any], **results: Any) -> StepContext:
        """What a builder or compose sees: ``params`` and the named steps' ``results``."""
        return StepContext(params, self.member_id, results)

    def target(self, endpoint: str, step: str, ctx: StepContext) -> tuple[str, str] | None:
        """The method and target the step's builder asks for; None when it asks for nothing."""
        request = self.steps(endpoint)[step].request(ctx)
        return None if request is None else (request.method, request.target())

    def run(self, endpoint: str, params: dict[str, Any], replies: dict[str, Any]) -> RunResult:
        """Drive the plan's pure state machine; a step missing from ``replies`` fails."""
        run = PlanRun(self.endpoint(endpoint).plan, params, self.member_id, deadline=10.0)
        while not run.finished:
            ready = run.take_ready(0.0)
            if not ready:
                break
            for index, record, _request in ready:
                name = record.step.name
                if name in replies:
                    run.resolve(index, Reply(index, name, Outcome.SUCCESS, replies[name]))
                else:
                    run.resolve(index, Reply(index, name, Outcome.FAILURE, None, "down"))
        return run.result()
