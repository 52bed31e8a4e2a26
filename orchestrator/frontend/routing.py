"""The routing stage: a request's method and path to its endpoint and path parameters.

A path no endpoint serves is a 404 ``not_found``; a path served for other methods only is
a 405 ``method_not_allowed`` that lists them. The endpoint found is the request's from here
on: the response stage observes the request under it.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.frontend import problems
from orchestrator.frontend.request import Request
from orchestrator.plans import Endpoint, EndpointRegistry

__all__ = ["Router"]


class Router:
    """Routes requests among the endpoints of ``registry``."""

    __slots__ = ("registry",)

    def __init__(self, registry: EndpointRegistry) -> None:
        self.registry = registry

    def route(self, request: Request) -> tuple[Endpoint, Mapping[str, str]]:
        """``request``'s endpoint (also set on it) and path parameters; raises a problem."""
        match = self.registry.route(request.method, request.path)
        if match.endpoint is None:
            if match.allowed:
                raise problems.method_not_allowed(match.allowed)
            raise problems.not_found(request.path)
        request.endpoint = match.endpoint
        return match.endpoint, match.path_params
