"""The service table: one handler per simulated service, all over one world and one store."""

from __future__ import annotations

from collections.abc import Callable

from backends.simulated.context import ServiceContext
from backends.simulated.data import World
from backends.simulated.discovery import DiscoveryServices
from backends.simulated.exchange import HttpError, Request, Response, error
from backends.simulated.nonmember import NonMemberServices
from backends.simulated.playback import PlaybackServices
from backends.simulated.reference import SERVICES
from backends.simulated.store import Store

#: A service handler: a request (path below the service's prefix) in, a response out.
Handler = Callable[[Request], Response]


class Services:
    """Routes a request to its service's handler and turns ``HttpError`` into a response."""

    def __init__(self, world: World, store: Store) -> None:
        context = ServiceContext(world, store)
        nonmember = NonMemberServices(context)
        discovery = DiscoveryServices(context)
        playback = PlaybackServices(context)
        self._handlers: dict[str, Handler] = {
            "plans": nonmember.plans,
            "trial": nonmember.trial,
            "accounts": nonmember.accounts,
            "billing": nonmember.billing,
            "subscriber": discovery.subscriber,
            "recommendations": discovery.recommendations,
            "catalog": discovery.catalog,
            "ratings": discovery.ratings,
            "search": discovery.search,
            "device": playback.device,
            "playback": playback.playback,
            "bookmarks": playback.bookmarks,
            "licensing": playback.licensing,
            "history": playback.history,
        }
        if tuple(self._handlers) != SERVICES:  # pragma: no cover - guards the table above
            raise RuntimeError("the handler table must list exactly SERVICES, in order")

    def handle(self, service: str, request: Request) -> Response:
        """The service's answer; unknown services are 404."""
        handler = self._handlers.get(service)
        if handler is None:
            return error(404, "unknown service")
        try:
            return handler(request)
        except HttpError as exc:
            return error(exc.status, exc.message)
