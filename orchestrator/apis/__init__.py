"""The team-owned API families: endpoint declarations only, no actors, greenlets or sockets.

Each family module exposes ``endpoints()``, which builds its declarations afresh on every
call, so nothing here is mutable process state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from orchestrator.apis.discovery import endpoints as discovery
from orchestrator.apis.nonmember import endpoints as nonmember
from orchestrator.apis.playback import endpoints as playback
from orchestrator.plans import Endpoint

__all__ = ["FAMILIES", "TEAMS"]

_MODULES = (nonmember, discovery, playback)

#: Family name -> the function that declares its endpoints.
FAMILIES: Mapping[str, Callable[[], tuple[Endpoint, ...]]] = MappingProxyType(
    {module.API: module.endpoints for module in _MODULES}
)

#: Family name -> the team that owns it (and answers its pages).
TEAMS: Mapping[str, str] = MappingProxyType({module.API: module.TEAM for module in _MODULES})
