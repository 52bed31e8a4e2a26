"""The discovery API package (team discovery): the home page, search and titles.

Served when ``server.apis`` lists ``orchestrator.apis.discovery``.
"""

from orchestrator.apis.discovery import endpoints as _declarations
from orchestrator.plans import ApiPackage

__all__ = ["PACKAGE"]

PACKAGE = ApiPackage(
    _declarations.API,
    _declarations.TEAM,
    _declarations.endpoints,
    summary="home rows, search and title details",
)
