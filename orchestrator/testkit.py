"""The test kit of API packages: a team's endpoints through Frontdoor's real pipeline,
against fake backends that run in the test's own process.

A team tests its package as it will be served: routing, parameters, ``fields``, auth,
deadlines, the plan's dependent steps, fallbacks and the composed response all run the
code production runs (``Frontdoor.build`` with the package named in ``server.apis``); only
each backend's client is replaced by a function of the test's::

    from orchestrator.testkit import PackageHarness

    def shows(request):                      # an orchestrator.plans.BackendRequest
        return {"shows": [{"id": "s1", "title": "Moss", "min_age": 3}]}

    with PackageHarness(["kids_api"], {"kids_catalog": shows, "parental": ...}) as kit:
        reply = kit.get("/v1/kids/shows", member="m1", query={"limit": "5"})
        assert reply.status == 200 and reply.json["shows"][0]["title"] == "Moss"

A handler returns the backend's JSON body, or raises ``BackendUnavailable`` (a 503 from
the backend) or ``BackendRefused`` (a 4xx) to try the plan's fallbacks and device errors;
``kit.calls`` records every backend request in order. No socket is opened.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

from backends.errors import BackendStatusError
from backends.testing import FakeBackend
from backends.transport import BackendRequest
from orchestrator.config import load_settings
from orchestrator.runtime import Frontdoor

__all__ = ["BackendRefused", "BackendUnavailable", "Handler", "PackageHarness", "Reply"]

#: Answers one backend request with the backend's JSON body (or raises).
Handler = Callable[[BackendRequest], Any]


class BackendUnavailable(BackendStatusError):  # noqa: N818 - reads as what the backend said
    """The backend answered 503: a failure (retried, counted by its breaker)."""

    def __init__(self, message: str = "unavailable") -> None:
        super().__init__(503, message)


class BackendRefused(BackendStatusError):  # noqa: N818 - reads as what the backend said
    """The backend refused the request with a 4xx ``status`` (a step's device error)."""

    def __init__(self, status: int = 404, message: str = "refused") -> None:
        super().__init__(status, message)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a device received."""

    status: int
    headers: Mapping[str, str]
    json: Any


@dataclass(slots=True)
class PackageHarness:
    """Frontdoor serving ``apis`` (module names, as in ``server.apis``) with each backend
    answered by ``backends[name]``; ``environ`` adds ``FRONTDOOR_*`` settings."""

    apis: Sequence[str]
    backends: Mapping[str, Handler]
    environ: Mapping[str, str] = field(default_factory=dict)
    #: Every backend request so far, as ``(backend, request)``, in the order they were sent.
    calls: list[tuple[str, BackendRequest]] = field(default_factory=list)
    frontdoor: Frontdoor = field(init=False)

    def __post_init__(self) -> None:
        settings = load_settings(
            environ={
                "FRONTDOOR_SERVER_APIS": ",".join(self.apis),
                "FRONTDOOR_SERVER_PASSTHROUGH": "",
                "FRONTDOOR_STATSD_ENABLED": "false",
                "FRONTDOOR_BACKENDS_BASE_URL": "",
                **{_url_key(name): f"http://{name}.invalid" for name in self.backends},
                **self.environ,
            }
        )
        self.frontdoor = Frontdoor.build(settings, clients=self._fake)
        self.frontdoor.start()

    def _fake(self, spec: Any) -> FakeBackend:
        handler = self.backends[spec.name]

        def recorded(request: BackendRequest) -> Any:
            self.calls.append((spec.name, request))
            return handler(request)

        return FakeBackend(spec.name, recorded)

    def get(self, path: str, **options: Any) -> Reply:
        """``GET path``; see ``request``."""
        return self.request("GET", path, **options)

    def post(self, path: str, body: Any, **options: Any) -> Reply:
        """``POST path`` with ``body`` as JSON; see ``request``."""
        return self.request("POST", path, body=body, **options)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        body: Any = None,
        member: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One device request; ``member`` signs a member token for that member id."""
        payload = b"" if body is None else json.dumps(body).encode()
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": urlencode(query),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(payload),
            "CONTENT_LENGTH": str(len(payload)),
        }
        if body is not None:
            environ["CONTENT_TYPE"] = "application/json"
        if member is not None:
            token = self.frontdoor.signer.issue(member)
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        started: list[tuple[str, list[tuple[str, str]]]] = []
        raw = b"".join(self.frontdoor.app(environ, lambda s, h: started.append((s, h))))
        status, response_headers = started[0]
        return Reply(int(status.split()[0]), dict(response_headers), json.loads(raw or b"null"))

    def close(self) -> None:
        """Stop the backend actors."""
        self.frontdoor.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()


def _url_key(name: str) -> str:
    return f"FRONTDOOR_BACKENDS_{name.upper()}_URL"
