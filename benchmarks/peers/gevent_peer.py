"""Reference implementation 2 (and 3) of benchmarks/peers.py: gevent greenlets.

``POST /v1/playback/play`` and ``GET /v1/discovery/home`` on ``gevent.pywsgi`` (with
TCP_NODELAY on accepted connections, else Nagle's algorithm holds each body for the
client's delayed ACK: 40 ms), one HTTP client per backend with its own keep-alive pool,
``gevent.spawn``/``joinall`` for the parallel steps, the same data dependencies and replies
as Frontdoor (benchmarks/peers/_shared.py), stdlib json. No retries, breakers, bulkheads,
deadlines, metrics or access log.

``--client geventhttpclient`` (the default) uses ``geventhttpclient.HTTPClient``;
``--client requests`` uses a ``requests.Session`` per backend (what Frontdoor's transport is
built on) under gevent's monkey-patching.

    .venv/bin/python benchmarks/peers/gevent_peer.py BACKENDS_BASE_URL PORT [--client requests]

The bearer-token secret comes from the PEERS_TOKEN_SECRET environment variable.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - gevent patches first
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import parse_qsl, urlencode, urlsplit  # noqa: E402

import gevent  # noqa: E402
from _shared import (  # noqa: E402
    CARD_FIELDS,
    BadRequestError,
    compose_home,
    compose_play,
    decision_body,
    home_params,
    home_rows,
    licence_body,
    member_from,
    play_params,
)
from gevent.pywsgi import WSGIServer  # noqa: E402

BACKENDS = ("subscriber", "device", "playback", "bookmarks", "licensing")
BACKENDS += ("recommendations", "catalog", "ratings")
POOL_SIZE = 64
TIMEOUT_S = 1.0
_MAX_BODY = 65536


class BackendError(Exception):
    """A backend answered something other than 200."""


class GeventHttpClient:
    """One ``geventhttpclient.HTTPClient`` (a keep-alive pool) per backend."""

    def __init__(self, base: str) -> None:
        from geventhttpclient import HTTPClient

        url = urlsplit(base)
        self._prefix = url.path.rstrip("/")
        self._clients = {
            name: HTTPClient(
                url.hostname or "127.0.0.1",
                url.port,
                concurrency=POOL_SIZE,
                connection_timeout=TIMEOUT_S,
                network_timeout=TIMEOUT_S,
            )
            for name in BACKENDS
        }

    def call(self, backend: str, method: str, path: str, body: Any = None) -> Any:
        """Call ``backend`` and decode its JSON reply."""
        client = self._clients[backend]
        uri = f"{self._prefix}/{backend}{path}"
        if body is None:
            response = client.request(method, uri)
        else:
            data = json.dumps(body).encode()
            headers = {"Content-Type": "application/json"}
            response = client.request(method, uri, body=data, headers=headers)
        payload = response.read()
        if response.status_code != 200:
            raise BackendError(f"{backend}: {response.status_code}")
        return json.loads(payload)


class RequestsClient:
    """One ``requests.Session`` (a keep-alive pool) per backend."""

    def __init__(self, base: str) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self._base = base.rstrip("/")
        self._sessions = {}
        for name in BACKENDS:
            session = requests.Session()
            session.trust_env = False  # no proxy/netrc lookups per call, as Frontdoor's transport
            session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE))
            self._sessions[name] = session

    def call(self, backend: str, method: str, path: str, body: Any = None) -> Any:
        """Call ``backend`` and decode its JSON reply."""
        url = f"{self._base}/{backend}{path}"
        response = self._sessions[backend].request(method, url, json=body, timeout=TIMEOUT_S)
        if response.status_code != 200:
            raise BackendError(f"{backend}: {response.status_code}")
        return response.json()


def _parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` in greenlets; their results in order, or the first error."""
    greenlets = [gevent.spawn(call) for call in calls]
    gevent.joinall(greenlets, raise_error=True)
    return [greenlet.value for greenlet in greenlets]


class App:
    """The WSGI application: the two endpoints, nothing else."""

    def __init__(self, client: GeventHttpClient | RequestsClient, secret: bytes) -> None:
        self.call = client.call
        self.secret = secret

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Route, run, and answer JSON."""
        status, reply = "200 OK", None
        try:
            member = member_from(environ.get("HTTP_AUTHORIZATION"), self.secret)
            route = (environ["REQUEST_METHOD"], environ["PATH_INFO"])
            if route == ("POST", "/v1/playback/play"):
                if member is None:
                    status, reply = "401 Unauthorized", {"error": "unauthorized"}
                else:
                    reply = self.play(member, environ)
            elif route == ("GET", "/v1/discovery/home"):
                if member is None:
                    status, reply = "401 Unauthorized", {"error": "unauthorized"}
                else:
                    reply = self.home(member, environ)
            else:
                status, reply = "404 Not Found", {"error": "not_found"}
        except BadRequestError as exc:
            status, reply = "400 Bad Request", {"error": str(exc)}
        except (BackendError, OSError, KeyError, TypeError, ValueError) as exc:
            status, reply = "502 Bad Gateway", {"error": type(exc).__name__}
        data = json.dumps(reply).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    def play(self, member: str, environ: dict[str, Any]) -> Any:
        """(subscriber || device) -> (decision || bookmark) -> licence."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > _MAX_BODY:
            raise BadRequestError("body too large")
        try:
            params = json.loads(environ["wsgi.input"].read(length))
        except ValueError as exc:
            raise BadRequestError("expected JSON") from exc
        title, device_type = play_params(params)
        call = self.call
        subscriber, device = _parallel(
            lambda: call("subscriber", "GET", f"/members/{member}"),
            lambda: call("device", "GET", f"/devices/{device_type}"),
        )
        decision, bookmark = _parallel(
            lambda: call(
                "playback",
                "POST",
                "/decisions",
                decision_body(member, title, device_type, subscriber),
            ),
            lambda: call("bookmarks", "GET", f"/{member}/{title}"),
        )
        licence = None
        if decision["allowed"]:
            body = licence_body(member, title, device_type, device)
            licence = call("licensing", "POST", "/licenses", body)
        return compose_play(title, decision, licence, bookmark)

    def home(self, member: str, environ: dict[str, Any]) -> Any:
        """subscriber -> recommendations -> (catalog || ratings)."""
        rows, per_row = home_params(dict(parse_qsl(environ.get("QUERY_STRING", ""))))
        call = self.call
        subscriber = call("subscriber", "GET", f"/members/{member}")
        query = urlencode({"rows": rows, "per_row": per_row})
        recommendations = call("recommendations", "GET", f"/rows/{member}?{query}")
        cut, ids = home_rows(recommendations, rows, per_row)
        joined = ",".join(ids)
        catalog, ratings = _parallel(
            lambda: call(
                "catalog", "GET", "/titles?" + urlencode({"ids": joined, "fields": CARD_FIELDS})
            ),
            lambda: call("ratings", "GET", f"/match/{member}?" + urlencode({"ids": joined})),
        )
        return compose_home(subscriber, cut, catalog, ratings)


class NoDelayServer(WSGIServer):
    """pywsgi with TCP_NODELAY on each accepted connection."""

    def handle(self, sock: socket.socket, address: Any) -> None:
        """Disable Nagle's algorithm, then serve as pywsgi does."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("port", type=int)
    parser.add_argument(
        "--client", choices=("geventhttpclient", "requests"), default="geventhttpclient"
    )
    args = parser.parse_args()
    client_class = GeventHttpClient if args.client == "geventhttpclient" else RequestsClient
    app = App(client_class(args.base_url), os.environ["PEERS_TOKEN_SECRET"].encode())
    server = NoDelayServer(("127.0.0.1", args.port), app, log=None, backlog=1024)
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, gevent.spawn, server.stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
