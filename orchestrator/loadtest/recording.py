"""Recordings of device traffic for ``replay``: the file format and its two sources.

A recording is JSON lines. The first line is a header, ``{"frontdoor_recording": 1,
"source": ...}``; each further line is one device request::

    {"at_s": 0.125, "method": "POST", "path": "/v1/playback/play",
     "headers": {"Content-Type": "application/json"}, "auth": true, "member": "m1",
     "body": "{\\"title_id\\":\\"t42\\"}",
     "response": {"status": 200, "content_type": "application/json", "body": "{...}"}}

``at_s`` is the request's arrival since the first one (replay keeps this pacing); ``path``
carries the query string; ``headers`` only those that shape a response (``KEPT_HEADERS``).
Credentials are never stored: ``auth`` says the request carried a bearer token and
``member`` whom it was issued to (its unverified ``sub`` claim), so that replay signs a
token of its own for that member. ``body`` is the request body as text; ``response``
(optional) is what the recorded target answered (``body`` absent when it was not kept).

Two sources:

- ``from_access_log``: Frontdoor's JSON access log (``orchestrator/ops/access_log.py``). It
  keeps the method and path but of the query string only its length, and no body, so only
  GET and HEAD requests without a query convert (the rest are counted, by reason), with
  the logged status as their response and ``member`` given by the caller.
- ``Capture``: a recording proxy in front of Frontdoor. It forwards each device request
  and records a ``sample`` share of them with the response's status, and its body when
  asked to (every ``token`` value in it redacted); bounded by a request count and a
  duration.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from orchestrator.loadtest.target import Target

__all__ = [
    "FORMAT_VERSION",
    "KEPT_HEADERS",
    "Capture",
    "Conversion",
    "RecordedRequest",
    "RecordedResponse",
    "Recording",
    "RecordingError",
    "from_access_log",
    "read_recording",
    "write_recording",
]

#: The version in a recording's header line; a reader refuses any other.
FORMAT_VERSION: Final = 1
#: Request headers a recording keeps (lower case): those that may change the response.
#: Never Authorization, cookies, admin tokens or request ids.
KEPT_HEADERS: Final = (
    "accept",
    "accept-language",
    "content-type",
    "if-none-match",
    "user-agent",
    "x-device-type",
    "x-request-timeout-ms",
)
#: What a recorded response body holds instead of a token.
REDACTED: Final = "[redacted]"
#: Largest request or response body the capture proxy accepts.
MAX_BODY_BYTES: Final = 1024 * 1024
#: Paths of operators and machines, not devices: never converted from an access log.
_NOT_DEVICE_PREFIXES: Final = ("/_admin", "/healthz", "/readyz", "/metrics")
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class RecordingError(ValueError):
    """A recording or access log that cannot be read; the message names the line."""


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    """What the recorded target answered; ``body`` None when it was not kept."""

    status: int
    content_type: str = ""
    body: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One device request of a recording (see the module docstring for the fields)."""

    at_s: float
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    auth: bool = False
    member: str | None = None
    body: str | None = None
    response: RecordedResponse | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as one line's object."""
        line: dict[str, Any] = {
            "at_s": round(self.at_s, 6),
            "method": self.method,
            "path": self.path,
            "headers": dict(self.headers),
            "auth": self.auth,
        }
        if self.member is not None:
            line["member"] = self.member
        if self.body is not None:
            line["body"] = self.body
        if self.response is not None:
            response: dict[str, Any] = {"status": self.response.status}
            if self.response.content_type:
                response["content_type"] = self.response.content_type
            if self.response.body is not None:
                response["body"] = self.response.body
            line["response"] = response
        return line


@dataclass(frozen=True, slots=True)
class Recording:
    """A recording's header and its requests, in arrival order."""

    source: str
    requests: tuple[RecordedRequest, ...]

    @property
    def duration_s(self) -> float:
        """From the first request's arrival to the last one's."""
        return self.requests[-1].at_s if self.requests else 0.0


def write_recording(file: IO[str], source: str, requests: Iterable[RecordedRequest] = ()) -> None:
    """Write the header line and ``requests``, one JSON object per line."""
    header = {"frontdoor_recording": FORMAT_VERSION, "source": source}
    file.write(json.dumps(header) + "\n")
    for request in requests:
        file.write(json.dumps(request.to_json(), separators=(",", ":")) + "\n")


def read_recording(path: str | Path) -> Recording:
    """Read a recording file; ``RecordingError`` names the first bad line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: cannot read: {exc}") from exc
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise RecordingError(f"{path}: empty, not a recording")
    header = _json_line(path, *lines[0])
    if not isinstance(header, dict) or header.get("frontdoor_recording") != FORMAT_VERSION:
        raise RecordingError(
            f"{path}:{lines[0][0]}: not a recording of format {FORMAT_VERSION} "
            '(its first line must be {"frontdoor_recording": 1, ...})'
        )
    requests = [
        _request(path, number, _json_line(path, number, line)) for number, line in lines[1:]
    ]
    requests.sort(key=lambda request: request.at_s)
    return Recording(str(header.get("source", "")), tuple(requests))


def _json_line(path: str | Path, number: int, line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        raise RecordingError(f"{path}:{number}: not JSON: {exc}") from exc


def _request(path: str | Path, number: int, line: Any) -> RecordedRequest:
    where = f"{path}:{number}"
    if not isinstance(line, dict):
        raise RecordingError(f"{where}: expected an object")
    at_s = line.get("at_s")
    if not isinstance(at_s, int | float) or isinstance(at_s, bool) or at_s < 0:
        raise RecordingError(f"{where}: at_s must be a number >= 0")
    method, target = line.get("method"), line.get("path")
    if not isinstance(method, str) or not method.isalpha():
        raise RecordingError(f"{where}: method must be a word such as GET")
    if not isinstance(target, str) or not target.startswith("/"):
        raise RecordingError(f"{where}: path must start with /")
    headers = line.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise RecordingError(f"{where}: headers must be an object of strings")
    member, body = line.get("member"), line.get("body")
    if member is not None and not isinstance(member, str):
        raise RecordingError(f"{where}: member must be a string")
    if body is not None and not isinstance(body, str):
        raise RecordingError(f"{where}: body must be a string")
    return RecordedRequest(
        float(at_s),
        method.upper(),
        target,
        tuple(sorted(headers.items())),
        bool(line.get("auth", False)),
        member,
        body,
        _response(where, line.get("response")),
    )


def _response(where: str, value: Any) -> RecordedResponse | None:
    if value is None:
        return None
    status = value.get("status") if isinstance(value, dict) else None
    if not isinstance(status, int) or not 100 <= status <= 599:  # noqa: PLR2004 - HTTP codes
        raise RecordingError(f"{where}: response.status must be an HTTP status code")
    content_type, body = value.get("content_type", ""), value.get("body")
    if not isinstance(content_type, str) or (body is not None and not isinstance(body, str)):
        raise RecordingError(f"{where}: response.content_type and body must be strings")
    return RecordedResponse(status, content_type, body)


# ---------------------------------------------------------------------------------------
# From the access log.


@dataclass(frozen=True, slots=True)
class Conversion:
    """An access log turned into requests, and what could not be, counted by reason."""

    requests: tuple[RecordedRequest, ...]
    skipped: Mapping[str, int]


def from_access_log(lines: Iterable[str], member: str | None = "m1") -> Conversion:
    """The requests of Frontdoor's access lines that can be replayed exactly.

    Lines that are not access lines (other loggers, plain text) are passed over. Arrival is
    the line's time less the request's latency. ``member``: whom replay signs tokens for
    (the log does not say who called; None sends no token).
    """
    kept: list[tuple[float, RecordedRequest]] = []
    skipped: Counter[str] = Counter()
    for line in lines:
        entry = _access_line(line)
        if entry is None:
            continue
        reason = _unconvertible(entry)
        if reason is not None:
            skipped[reason] += 1
            continue
        logged_s = _epoch_s(entry["time"])
        if logged_s is None:
            skipped["bad time"] += 1
            continue
        arrived_s = logged_s - float(entry.get("latency_ms", 0)) / 1000
        status = entry.get("status")
        response = RecordedResponse(status) if isinstance(status, int) else None
        request = RecordedRequest(
            0.0,
            str(entry["method"]),
            str(entry["path"]),
            auth=member is not None,
            member=member,
            response=response,
        )
        kept.append((arrived_s, request))
    kept.sort(key=lambda pair: pair[0])
    first = kept[0][0] if kept else 0.0
    requests = tuple(
        RecordedRequest(
            round(at - first, 6), r.method, r.path, r.headers, r.auth, r.member, r.body, r.response
        )
        for at, r in kept
    )
    return Conversion(requests, dict(skipped))


def _access_line(line: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or entry.get("event") != "access":
        return None
    if not all(isinstance(entry.get(key), str) for key in ("time", "method", "path")):
        return None
    return entry


def _unconvertible(entry: Mapping[str, Any]) -> str | None:
    """Why an access line cannot be replayed as it was, or None."""
    if str(entry["path"]).startswith(_NOT_DEVICE_PREFIXES):
        return "not a device request"
    if entry["method"] not in ("GET", "HEAD"):
        return "body not logged"
    if entry.get("query_chars", 0):
        return "query not logged"
    return None


def _epoch_s(stamp: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# The capture proxy.


def member_of(authorization: str) -> str | None:
    """The ``sub`` claim of a bearer token, unverified (a label, never trusted); None when
    the header holds no decodable token."""
    scheme, _, token = authorization.partition(" ")
    parts = token.strip().split(".")
    if scheme.lower() != "bearer" or len(parts) != 3:  # noqa: PLR2004 - a JWT's three parts
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and claims.get("scope", "member") == "member" else None


@dataclass
class Capture:
    """A WSGI app that forwards every request to ``target`` and records a ``sample`` share
    of them to ``out`` (one line each, flushed), with the response when ``keep_responses``.

    ``done`` is set once ``max_requests`` are recorded; the caller then stops the server.
    Upstream failures answer 502 and are recorded without a response.
    """

    target: Target
    out: IO[str]
    sample: float = 1.0
    max_requests: int = 1000
    keep_responses: bool = False
    timeout_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    recorded: int = 0
    forwarded: int = 0
    #: Looked up when made, not at import: gevent's once the entry point has patched.
    done: threading.Event = field(default_factory=lambda: threading.Event())  # noqa: PLW0108
    _first_s: float | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterator[bytes]:
        """Forward one request, record it, answer the device."""
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", "/")) or "/"
        if query := str(environ.get("QUERY_STRING", "")):
            path = f"{path}?{query}"
        arrived_s = self.clock()
        if self._first_s is None:
            self._first_s = arrived_s
        headers = list(_request_headers(environ))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            start_response("413 Content Too Large", [("Content-Type", "text/plain")])
            return iter([b"request body too large for the recording proxy\n"])
        body = environ["wsgi.input"].read(length) if length else None
        self.forwarded += 1
        try:
            status, reason, reply_headers, reply = self._forward(method, path, headers, body)
        except OSError as exc:
            self._record(arrived_s, method, path, headers, body, None)
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return iter([f"recording proxy: upstream failed: {exc}\n".encode()])
        content_type = next((v for k, v in reply_headers if k.lower() == "content-type"), "")
        kept = _scrubbed(reply.decode("utf-8", "replace")) if self.keep_responses else None
        response = RecordedResponse(status, content_type, kept)
        self._record(arrived_s, method, path, headers, body, response)
        passed = [(k, v) for k, v in reply_headers if k.lower() not in _HOP_BY_HOP]
        start_response(f"{status} {reason}", [*passed, ("Content-Length", str(len(reply)))])
        return iter([reply])

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """The target's answer; any failure is an ``OSError``."""
        import http.client  # not at import: it imports ssl, which gevent must patch first

        # One connection per request: a capture proxy carries a device's pace, not a load.
        conn = http.client.HTTPConnection(self.target.host, self.target.port, self.timeout_s)
        try:
            conn.request(method, path, body=body, headers=dict(headers))
            reply = conn.getresponse()
            data = reply.read(MAX_BODY_BYTES + 1)
        except http.client.HTTPException as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
        if len(data) > MAX_BODY_BYTES:
            raise OSError("response body too large")
        return reply.status, reply.reason, reply.getheaders(), data

    def _record(
        self,
        arrived_s: float,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        response: RecordedResponse | None,
    ) -> None:
        if path.startswith(_NOT_DEVICE_PREFIXES) or self.done.is_set():
            return
        if self.rng.random() >= self.sample:
            return
        authorization = next((v for k, v in headers if k.lower() == "authorization"), None)
        request = RecordedRequest(
            max(0.0, arrived_s - (self._first_s or 0.0)),
            method,
            path,
            tuple(sorted((k, v) for k, v in headers if k.lower() in KEPT_HEADERS)),
            authorization is not None,
            None if authorization is None else member_of(authorization),
            None if body is None else body.decode("utf-8", "replace"),
            response,
        )
        self.out.write(json.dumps(request.to_json(), separators=(",", ":")) + "\n")
        self.out.flush()
        self.recorded += 1
        if self.recorded >= self.max_requests:
            self.done.set()


def _scrubbed(body: str) -> str:
    """A JSON body with the value of every ``token`` key replaced: a sign-up's answer holds
    a member token, a credential a recording must not keep (replay ignores it anyway)."""
    if '"token"' not in body:
        return body
    try:
        value = json.loads(body)
    except ValueError:
        return body

    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: REDACTED if k == "token" else scrub(v) for k, v in node.items()}
        return [scrub(item) for item in node] if isinstance(node, list) else node

    return json.dumps(scrub(value), separators=(",", ":"))


def _request_headers(environ: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The device's headers from a WSGI environ, hop-by-hop ones left out."""
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        elif key == "CONTENT_TYPE" and value:
            name = "Content-Type"
        else:
            continue
        if name.lower() not in _HOP_BY_HOP:
            yield name, str(value)
