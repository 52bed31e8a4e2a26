"""The playback API package (team playback): play decisions, bookmarks and history.

Served when ``server.apis`` lists ``orchestrator.apis.playback``; passed through by an edge
when ``server.passthrough`` lists it. Its shared steps are the calls to services the other
families use too (the member's subscription, the device's capabilities): an edge runs them
itself and hands their results to the playback layer (docs/topologies.md).
"""

from orchestrator.apis.playback import endpoints as _declarations
from orchestrator.plans import ApiPackage

__all__ = ["PACKAGE"]

PACKAGE = ApiPackage(
    _declarations.API,
    _declarations.TEAM,
    _declarations.endpoints,
    summary="play decisions, licences, bookmarks and viewing history",
    shared_steps=frozenset({"subscriber", "device"}),
)
