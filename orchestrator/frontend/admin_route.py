"""The admin routes (``/_admin/*``): the bridge from a WSGI request to the ``AdminHandler``.

Answered before admission control: operators must get in while the process sheds. A
listener that does not serve them (the device port when admin routes have a port of their
own) answers 404 ``not_found``, whatever the credentials. An admin body may take
``body_timeout_s`` to arrive; the handler reads it only after authenticating the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from orchestrator.frontend import problems
from orchestrator.frontend.body import BodyReader
from orchestrator.frontend.dashboard_route import DashboardRoute
from orchestrator.frontend.request import Request, StartResponse
from orchestrator.frontend.respond import Responder
from orchestrator.ops.admin import AdminHandler, AdminRequest

__all__ = ["AdminRoute"]


class AdminRoute:
    """Hands admin requests to ``handler`` (None: no admin routes anywhere)."""

    __slots__ = ("_body", "_body_timeout_s", "_clock", "_dashboard", "_handler", "_respond")

    def __init__(
        self,
        handler: AdminHandler | None,
        body: BodyReader,
        respond: Responder,
        clock: Callable[[], float],
        body_timeout_s: float,
        dashboard: DashboardRoute | None = None,
    ) -> None:
        self._handler = handler
        self._dashboard = dashboard
        self._body = body
        self._respond = respond
        self._clock = clock
        self._body_timeout_s = body_timeout_s

    def serve(
        self, start_response: StartResponse, request: Request, *, served: bool = True
    ) -> Iterable[bytes] | None:
        """The response when ``request`` is for an admin path (404 unless ``served`` here);
        None for any other path."""
        if not AdminHandler.handles(request.path):
            return None
        if not served or self._handler is None:
            return self._respond.problem(start_response, request, problems.not_found(request.path))
        if self._dashboard is not None:
            streamed = self._dashboard.serve(start_response, request)
            if streamed is not None:
                return streamed
        environ = request.environ
        admin_request = AdminRequest(
            method=request.method,
            path=request.path,
            authorization=environ.get("HTTP_AUTHORIZATION"),
            request_id=request.request_id,
            client=environ.get("REMOTE_ADDR"),
            read_body=lambda: self._body.read(environ, self._clock() + self._body_timeout_s),
        )
        try:
            reply = self._handler.handle(admin_request)
        except problems.Problem as problem:
            return self._respond.problem(start_response, request, problem)
        except Exception as exc:  # noqa: BLE001 - a bug becomes a 500, logged by unhandled
            return self._respond.unhandled(start_response, request, exc)
        return self._respond.json(start_response, request, reply.status, reply.body)
