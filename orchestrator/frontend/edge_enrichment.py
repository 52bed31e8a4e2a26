"""The edge's enrichment, trusted by a playback layer: a stage of the layer's scope.

An edge that already authenticated the device and called the shared services passes
their results along (``X-Frontdoor-Enrichment``, ``orchestrator.frontend.enrichment``).
A valid one stands for the member's token for the scope's calls, and presets the steps
this process declares presettable (``shared_steps``); results for other steps are ignored.
A forged, malformed or expired one, or one sealed for another method or path (a replay), is
a 403 ``forbidden`` (the reason is logged). Without
the header, the calls authenticate and call every step as usual.
"""

from __future__ import annotations

import logging

from orchestrator.frontend import problems
from orchestrator.frontend.enrichment import ENVIRON_KEY, Enricher, EnrichmentError
from orchestrator.frontend.request import LOGGER, Environ, Scope

__all__ = ["EdgeEnrichment"]

log = logging.getLogger(LOGGER)


class EdgeEnrichment:
    """Opens enrichments with ``enricher``; presets only the ``shared_steps``."""

    __slots__ = ("_enricher", "shared_steps")

    def __init__(self, enricher: Enricher, shared_steps: frozenset[str]) -> None:
        self._enricher = enricher
        self.shared_steps = shared_steps

    def apply(self, environ: Environ, scope: Scope) -> None:
        """Give ``scope`` the member and presets of ``environ``'s enrichment, if it has one."""
        sealed = environ.get(ENVIRON_KEY)
        if sealed is None:
            return
        try:
            member, results = self._enricher.open(
                sealed, environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
            )
        except EnrichmentError as exc:
            log.warning("rejected enrichment: %s", exc)
            raise problems.forbidden() from None
        scope.enriched_member = member
        scope.presets = {name: results[name] for name in self.shared_steps if name in results}
