"""The discovery API package as a faulty next release would serve it: a planted change for
``bin/loadtest replay`` to find (docs/replay.md, tests/e2e/test_replay_topologies.py).

Every endpoint is discovery's own, except that the title page reports ``duration_s`` in
minutes: the kind of unit slip that passes a schema check (still an integer) and that only
a comparison of real responses catches. Served in place of discovery::

    PYTHONPATH=examples/next_discovery \\
    FRONTDOOR_SERVER_APIS=orchestrator.apis.nonmember,next_discovery,orchestrator.apis.playback \\
        bin/frontdoor serve
"""

from __future__ import annotations

import dataclasses
from typing import Any

from orchestrator.apis.discovery import PACKAGE as _DISCOVERY
from orchestrator.plans import ApiPackage, Endpoint, StepContext

__all__ = ["PACKAGE"]

#: The one endpoint that changes.
CHANGED = "title"
_SECONDS_PER_MINUTE = 60


def _in_minutes(compose: Any) -> Any:
    def compose_title(ctx: StepContext) -> Any:
        details = compose(ctx)
        if isinstance(details.get("duration_s"), int):
            details["duration_s"] = round(details["duration_s"] / _SECONDS_PER_MINUTE)
        return details

    return compose_title


def _endpoints() -> tuple[Endpoint, ...]:
    return tuple(
        dataclasses.replace(
            endpoint,
            plan=dataclasses.replace(endpoint.plan, compose=_in_minutes(endpoint.plan.compose)),
        )
        if endpoint.name == CHANGED
        else endpoint
        for endpoint in _DISCOVERY.endpoints()
    )


PACKAGE = ApiPackage(
    _DISCOVERY.name,
    _DISCOVERY.team,
    _endpoints,
    summary=_DISCOVERY.summary,
    shared_steps=_DISCOVERY.shared_steps,
)
