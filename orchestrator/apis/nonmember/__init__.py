"""The non-member API package (team growth): plans on sale and sign-up with a free trial.

Served when ``server.apis`` lists ``orchestrator.apis.nonmember``.
"""

from orchestrator.apis.nonmember import endpoints as _declarations
from orchestrator.plans import ApiPackage

__all__ = ["PACKAGE"]

PACKAGE = ApiPackage(
    _declarations.API,
    _declarations.TEAM,
    _declarations.endpoints,
    summary="sign-up, plans and the free trial",
)
