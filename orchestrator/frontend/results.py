"""A plan's result as a response: the status and body devices get, or the problem.

A run past its deadline is a 504 ``deadline_exceeded``; one whose required step's backend
did not answer within its own timeout, before the deadline, a 504 ``backend_timeout`` (a
gateway timeout: the backend's bound, not the request's); a refusal a step declared is
that problem; a failed run a 503 ``dependency_unavailable`` (with ``Retry-After`` only when
Frontdoor itself refused the failed step: breaker open, bulkhead full), or a 500 when
composing failed. A successful body gets its member token when its endpoint grants one, is
projected to the ``fields`` selection, and carries ``meta.degraded``: the parts that fell
back here, and those an upstream Frontdoor's body says fell back there. A deprecated
endpoint's response carries its deprecation headers.
"""

from __future__ import annotations

from typing import Any, Final

from actors.outcomes import REFUSED_HERE
from actors.plan import RunResult, RunStatus
from orchestrator.frontend import problems
from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.deprecation import Deprecations
from orchestrator.frontend.protocol.fields import Selection, project
from orchestrator.frontend.request import Request
from orchestrator.plans import Endpoint

__all__ = ["Results", "retry_after", "upstream_degraded"]

#: What a device is told to wait after a call Frontdoor refused itself (``REFUSED_HERE``:
#: breaker open, bulkhead full): brief, and cheap to answer again.
_DEPENDENCY_RETRY_AFTER_S: Final = 1.0


class Results:
    """Shapes results; issues member tokens with ``signer``."""

    __slots__ = ("_deprecations", "_signer")

    def __init__(self, signer: TokenSigner, deprecations: Deprecations) -> None:
        self._signer = signer
        self._deprecations = deprecations

    def shape(
        self,
        request: Request,
        endpoint: Endpoint,
        result: RunResult,
        selected: Selection | None,
    ) -> tuple[int, Any]:
        """The status and body for ``result`` (``request`` learns what degraded); raises the
        problem of a run that did not succeed."""
        if result.status is RunStatus.TIMED_OUT:
            raise problems.deadline_exceeded()
        if result.status is RunStatus.BACKEND_TIMED_OUT:
            raise problems.backend_timeout()
        if result.status is RunStatus.REJECTED and result.rejection is not None:
            why = result.rejection
            raise problems.refused(why.code, why.detail, why.parameter)
        if result.status is not RunStatus.OK:
            if result.failed_step in {"compose", "supervisor"}:
                raise problems.internal_error()
            raise problems.dependency_unavailable(retry_after(result))
        body = result.body
        degraded = result.degraded
        if isinstance(body, dict):
            # A body passed through from another Frontdoor (the edge's playback layer)
            # carries that one's meta: its degraded parts are this response's too.
            degraded += upstream_degraded(body.pop("meta", None), degraded)
            if endpoint.grants_member_token and isinstance(body.get("member_id"), str):
                body["token"] = self._signer.issue(body["member_id"])
            if selected is not None:
                body = project(body, selected)
            # meta is the protocol's, not the endpoint's: present whatever is selected.
            body["meta"] = {"degraded": list(degraded)}
        request.degraded = degraded
        if endpoint.deprecated is not None:
            request.extra_headers.extend(self._deprecations.headers(endpoint))
        return endpoint.success_status, body


def upstream_degraded(meta: object, known: tuple[str, ...]) -> tuple[str, ...]:
    """The degraded parts an upstream Frontdoor's ``meta`` lists, minus those already known."""
    listed = meta.get("degraded") if isinstance(meta, dict) else None
    if not isinstance(listed, list):
        return ()
    return tuple(
        part for part in dict.fromkeys(listed) if isinstance(part, str) and part not in known
    )


def retry_after(result: RunResult) -> float | None:
    """``Retry-After`` for a failed run: only when the failed step was refused here."""
    for record in result.records:
        if record.step.name == result.failed_step:
            return _DEPENDENCY_RETRY_AFTER_S if record.outcome in REFUSED_HERE else None
    return None
