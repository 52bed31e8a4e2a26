"""Which Frontdoor each API family's requests go to: ``--target``, or a ``--route`` of its own.

Frontdoor can run as one API (every family in one process) or as two (``nonmember`` and
``discovery`` in one process, ``playback`` in another; docs/topologies.md). To drive two
APIs like a path-routing load balancer would, each family can be sent to its own origin:

    bin/loadtest --target http://127.0.0.1:8081 --route playback=http://127.0.0.1:8082

A request's family is the second segment of its path (``/v1/playback/play`` ->
``playback``); whatever no route names goes to ``--target``. Every routed URL passes the
same ``parse_target`` policy as ``--target`` (loopback only unless ``--allow-remote``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator.apis import BUILTIN
from orchestrator.loadtest.target import Target, TargetError, parse_target

__all__ = ["FAMILIES", "Routes", "family_of", "parse_routes"]

#: The API families a route can name: the built-in packages, whose endpoints the mix drives.
FAMILIES = tuple(BUILTIN)

_FLAG = "--route"


def family_of(path: str) -> str | None:
    """The API family of a request path (``/v1/discovery/home`` -> ``discovery``), or None."""
    parts = path.split("/", 3)
    if len(parts) > 2 and parts[2] in FAMILIES:  # noqa: PLR2004 - "", "v1", family
        return parts[2]
    return None


@dataclass(frozen=True, slots=True)
class Routes:
    """The default target and the families routed elsewhere."""

    default: Target
    routed: Mapping[str, Target]

    def target_for(self, path: str) -> Target:
        """Where a request for ``path`` goes."""
        family = family_of(path)
        if family is None:
            return self.default
        return self.routed.get(family, self.default)

    def by_family(self) -> dict[str, str]:
        """Every family with the URL its requests go to (the report's ``run.routes``)."""
        return {family: self.routed.get(family, self.default).url for family in FAMILIES}

    def targets(self) -> tuple[Target, ...]:
        """The distinct origins some family goes to, in family order (one client each)."""
        seen: dict[Target, None] = {}
        for family in FAMILIES:
            seen.setdefault(self.routed.get(family, self.default), None)
        return tuple(seen)

    def families_of(self, target: Target) -> tuple[str, ...]:
        """The families whose requests go to ``target``."""
        return tuple(f for f in FAMILIES if self.routed.get(f, self.default) == target)


def parse_routes(default: Target, given: Iterable[str], *, allow_remote: bool = False) -> Routes:
    """``family=URL`` values of ``--route`` over ``default``; ``TargetError`` names the flag
    and the value when one is refused."""
    routed: dict[str, Target] = {}
    for value in given:
        family, sep, url = value.partition("=")
        family = family.strip()
        if not sep or not family or not url.strip():
            raise TargetError(f"{_FLAG}: expected family=URL, got {value!r}")
        if family not in FAMILIES:
            raise TargetError(
                f"{_FLAG} {value}: unknown family {family!r}; expected one of {', '.join(FAMILIES)}"
            )
        if family in routed:
            raise TargetError(f"{_FLAG}: {family} is routed twice")
        try:
            routed[family] = parse_target(url.strip(), allow_remote=allow_remote)
        except TargetError as exc:
            raise TargetError(f"{_FLAG} {value}: {exc}") from exc
    return Routes(default, routed)
