"""The kids API package: a team's endpoints served by Frontdoor, from outside its repository.

Installed beside Frontdoor (``pip install examples/kids_api``) and served by configuration
alone::

    [server]
    apis = ["orchestrator.apis.nonmember", "orchestrator.apis.discovery",
            "orchestrator.apis.playback", "kids_api"]

    [backends.kids_catalog]
    url = "http://kids-catalog.internal:8080"

    [backends.parental]
    url = "http://parental.internal:8080"

Everything here comes from ``orchestrator.plans``, Frontdoor's public API for team code.
"""

from kids_api import endpoints as _declarations
from orchestrator.plans import ApiPackage

__all__ = ["PACKAGE"]

PACKAGE = ApiPackage(
    _declarations.API,
    _declarations.TEAM,
    _declarations.endpoints,
    summary="shows for the kids profile, within the member's parental controls",
)
