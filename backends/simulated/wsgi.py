"""The simulated services as a WSGI application, for any WSGI server (the simulated server
itself calls ``SimulatedApp.answer`` directly)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from backends.simulated.exchange import MAX_BODY_BYTES
from backends.simulated.handoff import Call, Reply

#: Optional environ keys: the raw (still percent-encoded) path, and the client's socket.
RAW_PATH_KEY = "frontdoor.simulated.raw_path"
SOCKET_KEY = "frontdoor.simulated.socket"

StartResponse = Callable[..., Any]


def respond(
    answer: Callable[[Call], Reply], environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    """WSGI: the ``Call`` of ``environ`` answered, its reply started and returned."""
    reply = answer(call_of(environ))
    start_response(reply.status_line, reply.fields())
    return [reply.body] if reply.chunks is None else reply.chunks


def call_of(environ: dict[str, Any]) -> Call:
    """The request of a WSGI environ."""
    path = environ.get(RAW_PATH_KEY)
    if path is None:
        # PATH_INFO is already unquoted (an encoded "/" inside an id is lost) and, by WSGI,
        # bytes as latin-1: decode it back to text.
        path = str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", "replace")
    return Call(
        environ["REQUEST_METHOD"],
        path,
        environ.get("QUERY_STRING", ""),
        _body(environ),
        environ.get(SOCKET_KEY),
    )


def _body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length > 0:
        return bytes(stream.read(min(length, MAX_BODY_BYTES + 1)))
    if environ.get("wsgi.input_terminated"):  # chunked: read up to one byte past the cap
        return bytes(stream.read(MAX_BODY_BYTES + 1))
    return b""
