"""The scope stage: what the calls of one HTTP request share, opened once per request.

A single call's scope, or a batch's (every call of it shares it): its Authorization (to
verify at most once), its deadline, one ``SharedCalls`` (identical backend reads made
once), whether an engineer asked for the trace, and what a trusted edge's enrichment
brings (``EdgeEnrichment``). The deadline is the endpoint's (or the batch's) budget,
lowered, never raised, by ``X-Request-Timeout-Ms`` and by the budget an upstream Frontdoor
passes on (``X-Frontdoor-Deadline-Ms``, the edge topology).
"""

from __future__ import annotations

from actors.call_cache import SharedCalls
from actors.supervisor import BackendDirectory
from orchestrator.frontend import problems
from orchestrator.frontend.auth import NotAdminError, TokenSigner, admin_principal
from orchestrator.frontend.edge_enrichment import EdgeEnrichment
from orchestrator.frontend.request import Environ, Scope

__all__ = ["Scopes", "budget_ms"]

#: Most digits of a budget header: enough for any deadline, and a cheap bound to check.
_MAX_DIGITS = 9


class Scopes:
    """Opens scopes whose calls go to ``directory``; the admin credentials ``/_admin/*``
    takes (``admin_token``, or a token of ``signer`` with the admin scope) unlock traces,
    and ``enrichment`` (a playback layer's) trusts an edge's enrichment."""

    __slots__ = ("_admin_token", "_directory", "_enrichment", "_signer")

    def __init__(
        self,
        directory: BackendDirectory,
        admin_token: str,
        enrichment: EdgeEnrichment | None = None,
        *,
        signer: TokenSigner | None = None,
    ) -> None:
        self._directory = directory
        self._admin_token = admin_token
        self._enrichment = enrichment
        self._signer = signer

    def open(self, environ: Environ, started: float, budget: int) -> Scope:
        """A fresh scope for a request that arrived at ``started`` with ``budget`` ms."""
        scope = Scope(
            authorization=environ.get("HTTP_AUTHORIZATION"),
            deadline=started + budget_ms(environ, budget) / 1000.0,
            calls=SharedCalls(self._directory),
            trace=self._wants_trace(environ),
        )
        if self._enrichment is not None:
            self._enrichment.apply(environ, scope)
        return scope

    def _wants_trace(self, environ: Environ) -> bool:
        """Traces are for engineers: ``X-Frontdoor-Admin-Token`` must carry an admin
        credential, the same check as ``/_admin/*`` (devices never hold one)."""
        if environ.get("HTTP_X_FRONTDOOR_TRACE") != "1":
            return False
        presented = environ.get("HTTP_X_FRONTDOOR_ADMIN_TOKEN")
        if not presented:
            return False
        try:
            admin_principal(presented, self._admin_token, self._signer)
        except NotAdminError:
            return False
        return True


def budget_ms(environ: Environ, budget: int) -> int:
    """``budget``, lowered (never raised) by ``X-Request-Timeout-Ms``, and by the budget
    an upstream Frontdoor passes on (``X-Frontdoor-Deadline-Ms``)."""
    upstream = environ.get("HTTP_X_FRONTDOOR_DEADLINE_MS")
    if upstream is not None and upstream.isdigit() and 0 < len(upstream) <= _MAX_DIGITS:
        budget = min(int(upstream), budget)
    asked = environ.get("HTTP_X_REQUEST_TIMEOUT_MS")
    if asked is None:
        return budget
    if not asked.isdigit() or len(asked) > _MAX_DIGITS or int(asked) < 1:
        raise problems.invalid_parameter(
            "X-Request-Timeout-Ms", "must be a positive integer of milliseconds"
        )
    return min(int(asked), budget)
