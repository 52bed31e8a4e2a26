"""The built-in API packages: endpoint declarations only, no actors, greenlets or sockets.

Each family is a package whose ``PACKAGE`` (an ``orchestrator.plans.ApiPackage``) names it,
its team and its endpoints; ``server.apis`` chooses which a process serves
(orchestrator/packages.py loads them), exactly as it does a team's own package outside
this repository (examples/kids_api/).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from orchestrator.apis.discovery import PACKAGE as _DISCOVERY
from orchestrator.apis.nonmember import PACKAGE as _NONMEMBER
from orchestrator.apis.playback import PACKAGE as _PLAYBACK
from orchestrator.plans import ApiPackage, Endpoint

__all__ = ["BUILTIN", "FAMILIES", "TEAMS"]

#: The built-in packages, by name.
BUILTIN: Mapping[str, ApiPackage] = MappingProxyType(
    {package.name: package for package in (_NONMEMBER, _DISCOVERY, _PLAYBACK)}
)

#: Family name -> the function that declares its endpoints.
FAMILIES: Mapping[str, Callable[[], tuple[Endpoint, ...]]] = MappingProxyType(
    {name: package.endpoints for name, package in BUILTIN.items()}
)

#: Family name -> the team that owns it (and answers its pages).
TEAMS: Mapping[str, str] = MappingProxyType({name: p.team for name, p in BUILTIN.items()})
