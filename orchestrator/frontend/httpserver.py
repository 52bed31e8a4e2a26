"""gevent's WSGI server with TCP_NODELAY, strict HTTP/1.1 framing, one error format, and
timeouts.

pywsgi writes a response's headers and body in separate sends; with Nagle's algorithm on,
the body waits for the client's delayed ACK of the headers: 40 ms per keep-alive request
on Linux (measured here: 44 ms per call without, 0.57 ms with). Every server of the
project (the API, the simulated microservices, benchmark backends) uses this class.

The request head is read strictly (RFC 9112): a bounded header block (``RequestHeaders``),
one unambiguous body length (``framing_problem``: no duplicate or non-decimal
Content-Length, no Content-Length beside Transfer-Encoding, no transfer coding but a final
``chunked``), within ``ProtocolLimits.header_timeout_s`` of the request's start, after at
most ``idle_timeout_s`` of keep-alive silence. A request refused here gets the
``application/problem+json`` the app would give (``problems``), with a request id and
``Connection: close``, and is reported to ``ProtocolLimits.on_refusal`` (the app's access
line and metric); nothing is printed outside the JSON log.

``abandon_body`` is for an application that gave up reading a request body (it did not
arrive in time): pywsgi would otherwise read the rest of it after the response, waiting
for bytes a stalled client may never send.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import gevent
from gevent.pywsgi import (
    MAX_REQUEST_LINE,
    Input,
    WSGIHandler,
    WSGIServer,
    _InvalidClientInput,  # pywsgi's "close, the stream is lost" signal
    format_date_time,
)

from orchestrator.frontend import problems
from orchestrator.frontend.request_ids import request_id

if TYPE_CHECKING:
    from orchestrator.frontend.connections import ConnectionLimits

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_FIELDS",
    "MAX_HEADER_LINE_BYTES",
    "REFUSAL_CODES",
    "LeanWSGIHandler",
    "NoDelayWSGIServer",
    "ProtocolLimits",
    "Refusal",
    "RequestHeaders",
    "abandon_body",
    "framing_problem",
    "http_date",
]

#: Limits of a request's header block: fields, bytes per line, bytes in all (the default
#: of ``server.max_header_bytes``). Past any of them the request is refused with 431
#: before the application sees it. http.client's parser (pywsgi's default) allows 100
#: lines of 64 KiB each, 6.4 MB of headers. The request line has pywsgi's limit,
#: ``MAX_REQUEST_LINE`` (8 KiB; past it, 414).
MAX_HEADER_FIELDS = 100
MAX_HEADER_LINE_BYTES = 8192
MAX_HEADER_BYTES = 32_768
_END_OF_HEADERS = frozenset({b"\r\n", b"\n", b""})
#: ``RequestHeaders.status`` of a block refused for its size (431); any other is malformed.
_TOO_LONG: Final = "Header line or block too long"
_TOO_MANY: Final = "Too many header fields"
#: Every code a refusal made here can carry (``problems.REFUSALS``: the metrics' vocabulary).
REFUSAL_CODES: Final = problems.REFUSALS
#: A Content-Length: decimal digits only (``int`` also takes "+2", " 2" and "0_2"), few
#: enough to stay clear of int's digit limit.
_DECIMAL: Final = re.compile(r"[0-9]{1,18}")
#: After a refusal the server reads (and drops) what the client still sends, for this long
#: and up to this much, so that closing does not reset the connection before the client
#: has read the answer (a "lingering close").
_LINGER_S: Final = 1.0
_LINGER_BYTES: Final = 65_536
_ACCESS_PATH_CHARS: Final = 256
_CONTENT_LENGTH_CHARS: Final = len("content-length")
_TRANSFER_ENCODING_CHARS: Final = len("transfer-encoding")
#: The head timeout's random stretch per connection (fraction of ``header_timeout_s``).
_HEAD_TIMEOUT_JITTER: Final = 0.25
_LOG = logging.getLogger("frontdoor.http")


class RequestHeaders:
    """A request's header fields, read by a small strict parser instead of the stdlib's
    ``email`` machinery (``http.client.parse_headers``), which pywsgi uses by default and
    which costs ~34 µs for six headers against ~5 µs here (benchmarks/hot_path.py).

    Offers exactly what ``gevent.pywsgi.WSGIHandler`` reads from its ``MessageClass``:
    ``status`` (non-empty: pywsgi answers 400), case-insensitive ``get``/``getheader``
    (the first field of that name), ``del`` (every field of that name), ``headers`` (the
    fields as ``"Name: value\\r\\n"`` lines) and ``typeheader``. Stricter than the stdlib,
    as RFC 9112 section 5 asks: obsolete line folding, whitespace before the colon and a
    line without a colon are refused, not repaired; and the block is bounded in fields,
    line length and total size.
    """

    __slots__ = ("_fields", "_first", "status")

    def __init__(
        self,
        fields: list[tuple[str, str]] | None = None,
        status: str = "",
        first: dict[str, str] | None = None,
    ) -> None:
        self._fields = [] if fields is None else fields
        self.status = status
        if first is None:
            first = {}
            for name, value in self._fields:
                first.setdefault(name.lower(), value)
        #: The first value of each name, by lower-case name: pywsgi asks for seven of them
        #: a request, each a scan of every field before (~3 µs for six fields).
        self._first = first

    @classmethod
    def read(cls, stream: Any, max_bytes: int = MAX_HEADER_BYTES) -> RequestHeaders:
        """Read the header block from ``stream`` (a buffered binary reader), up to and
        including its empty line, reading at most ``max_bytes`` (and one line) of it; a
        malformed or oversized block sets ``status``."""
        fields: list[tuple[str, str]] = []
        first: dict[str, str] = {}
        total = 0
        while True:
            line = stream.readline(MAX_HEADER_LINE_BYTES + 1)
            if line in _END_OF_HEADERS:
                return cls(fields, first=first)
            total += len(line)
            if len(line) > MAX_HEADER_LINE_BYTES or total > max_bytes:
                return cls(status=_TOO_LONG)
            if len(fields) == MAX_HEADER_FIELDS:
                return cls(status=_TOO_MANY)
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or not name or name[-1] in " \t" or name[0] in " \t":
                # Includes obs-fold (a line starting with whitespace continues the last).
                return cls(status="Malformed header line")
            value = value.strip(" \t\r\n")
            fields.append((name, value))
            first.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called ``name`` (any case), else ``default``."""
        return self._first.get(name.lower(), default)

    getheader = get

    def values(self, name: str) -> list[str]:
        """The value of every field called ``name`` (any case), in order."""
        wanted = name.lower()
        return [value for field_name, value in self._fields if field_name.lower() == wanted]

    @property
    def too_large(self) -> bool:
        """Whether the block was refused for its size (431) rather than its form (400)."""
        return self.status in (_TOO_LONG, _TOO_MANY)

    def __delitem__(self, name: str) -> None:
        wanted = name.lower()
        if self._first.pop(wanted, None) is not None:
            self._fields = [field for field in self._fields if field[0].lower() != wanted]

    @property
    def headers(self) -> Iterator[str]:
        """The fields as header lines (what pywsgi turns into ``HTTP_*`` keys)."""
        for name, value in self._fields:
            yield f"{name}: {value}\r\n"

    def items(self) -> list[tuple[str, str]]:
        """Every field as (name, value), in order (what gunicorn's access log reads)."""
        return list(self._fields)

    def items_view(self) -> list[tuple[str, str]]:
        """Every field as (name, value), in order, not copied: do not change it."""
        return self._fields

    @property
    def typeheader(self) -> str | None:
        """The ``Content-Type`` value, if any."""
        return self.get("content-type")


def framing_problem(headers: RequestHeaders, version: str) -> problems.Problem | None:
    """Why the body's length is ambiguous (RFC 9112 section 6), or None: it is not.

    Refused, 400 ``malformed_body``: more than one Content-Length (even equal ones, or a
    list), one that is not decimal digits, Content-Length beside Transfer-Encoding (the
    classic smuggling pair), Transfer-Encoding in an HTTP/1.0 request, ``chunked`` that is
    not the final coding or is applied twice; 501 ``unsupported_transfer_coding``: any
    coding before the final ``chunked`` (none is decoded here). What passes is at most one
    decimal Content-Length, or exactly ``Transfer-Encoding: chunked``: one reading only.
    """
    if headers.get("content-length") is None and headers.get("transfer-encoding") is None:
        return None  # no body: nothing to read two ways
    lengths: list[str] = []
    codings: list[str] = []
    for name, value in headers.items_view():
        # Lengths first: most names have neither length, and len() is cheaper than lower().
        size = len(name)
        if size == _CONTENT_LENGTH_CHARS and name.lower() == "content-length":
            lengths.append(value)
        elif size == _TRANSFER_ENCODING_CHARS and name.lower() == "transfer-encoding":
            codings.append(value)
    if codings:
        return _coding_problem(codings, bool(lengths), version)
    if len(lengths) > 1:
        return problems.malformed_body("more than one Content-Length")
    if lengths and not _DECIMAL.fullmatch(lengths[0]):
        return problems.malformed_body("Content-Length is not a decimal number of bytes")
    return None


def _coding_problem(codings: list[str], length: bool, version: str) -> problems.Problem | None:
    """``framing_problem`` for a request with Transfer-Encoding (``length``: and with a
    Content-Length too)."""
    names = [coding.strip().lower() for value in codings for coding in value.split(",")]
    problem: problems.Problem | None = None
    if length:
        problem = problems.malformed_body("both Content-Length and Transfer-Encoding")
    elif version == "HTTP/1.0":
        problem = problems.malformed_body("Transfer-Encoding in an HTTP/1.0 request")
    elif names[-1] != "chunked" or names.count("chunked") > 1 or "" in names:
        problem = problems.malformed_body("chunked must be the one, final transfer coding")
    elif len(names) > 1:
        problem = problems.unsupported_transfer_coding()
    return problem


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request the server refused before the application saw it (``on_refusal``'s news)."""

    status: int
    code: str
    request_id: str
    #: The request line's method and path (without the query, clipped), when it was read;
    #: "" otherwise.
    method: str
    path: str
    client: str | None
    latency_ms: float

    def environ(self) -> dict[str, str]:
        """The WSGI keys an access line is made of (``ops.access_log.access_entry``)."""
        environ = {"REQUEST_METHOD": self.method, "PATH_INFO": self.path or "/"}
        if self.client is not None:
            environ["REMOTE_ADDR"] = self.client
        return environ


@dataclass(frozen=True, slots=True)
class ProtocolLimits:
    """How long and how much of a request head the server waits for and reads, and whom it
    tells of the requests it refuses.

    ``header_timeout_s``: from a request's start (the accept, for a connection's first
    request; its first byte, for a kept-alive connection's next) to the end of its headers;
    past it the client gets a 408 and the connection is closed (one that sent nothing at
    all is closed without an answer, like a browser's unused pre-connection). Each
    connection's is stretched by up to a quarter at random, so that a burst of slow
    connections times out spread over seconds rather than in one turn of the event loop.
    The rest of a body the application did not read has ``header_timeout_s`` too, after
    the response, or the connection is closed.
    ``idle_timeout_s``: how long a kept-alive connection may wait for its next request;
    then it is closed, without an answer. ``max_header_bytes``: the header block's size;
    past it, 431. ``on_refusal``: told of each refused request (the app's access line and
    metric: ``FrontdoorApp.refused``); an error in it is logged, never raised.
    """

    header_timeout_s: float = 10.0
    idle_timeout_s: float = 60.0
    max_header_bytes: int = MAX_HEADER_BYTES
    on_refusal: Callable[[Refusal], None] | None = None


#: The limits of a server given none.
DEFAULT_LIMITS: Final = ProtocolLimits()


class _RefusedError(Exception):
    """Raised while a request head is read: answer ``problem``, then close."""

    def __init__(self, problem: problems.Problem) -> None:
        super().__init__(problem.code)
        self.problem = problem


class _LateError(BaseException):
    """A timer of the request head fired. A BaseException, as gevent's own Timeout is, so
    that no ``except Exception`` on the way (pywsgi's, or the parser's) swallows it."""


_NO_HEADERS: Final = RequestHeaders()


class _Deadline:
    """A timer that throws ``_LateError`` into the greenlet that armed it, ``seconds`` after
    each ``arm``: made once a connection and re-armed for every wait.

    Not a re-started ``gevent.Timeout``: libev keeps what is left of a stopped timer, so a
    ``Timeout`` started again counts down only the rest of its first ``seconds``. A
    kept-alive connection's idle timeout then ran over the connection's whole life (closed
    after 60 s of idle gaps in all, as a client sent on it), not each wait. A repeating
    libev timer re-armed with ``again`` starts its full interval afresh, for ~0.2 µs (a new
    ``Timeout`` costs ~1.3 µs).
    """

    __slots__ = ("_late", "_timer")

    def __init__(self, seconds: float, late: _LateError) -> None:
        self._timer = gevent.get_hub().loop.timer(seconds, seconds)
        self._late = late

    def arm(self) -> None:
        """Fire ``seconds`` from now in this greenlet, unless ``disarm`` comes first."""
        self._timer.again(gevent.getcurrent().throw, self._late)

    def disarm(self) -> None:
        """Do not fire."""
        self._timer.stop()


class _BoundedDiscard:
    """A request's body as pywsgi sees it after the response: what the application left
    unread is read and dropped (pywsgi's ``_discard``) within ``seconds``, or the
    connection is closed, since the rest may never come (pywsgi would wait for ever)."""

    __slots__ = ("_body", "_seconds")

    def __init__(self, body: Input, seconds: float) -> None:
        self._body = body
        self._seconds = seconds

    def _discard(self) -> None:
        body = self._body
        if body._chunked_input_error or (  # noqa: SLF001 - pywsgi's own "stream lost" flag
            body.chunk_length == 0
            if body.chunked_input
            else body.position >= (body.content_length or 0)
        ):
            return  # read to its end (the usual case), or abandoned: nothing to wait for
        late = _LateError()
        try:
            with gevent.Timeout(self._seconds, late):
                body._discard()  # noqa: SLF001 - pywsgi's own step, bounded here
        except _LateError:
            # pywsgi's signal for a body in an unknown state: close, read nothing more.
            raise _InvalidClientInput("the rest of the body did not arrive") from None


class LeanWSGIHandler(WSGIHandler):  # type: ignore[misc] # gevent ships no type hints
    """pywsgi's handler with ``RequestHeaders`` as its header parser, strict framing
    (``framing_problem``), the head read within ``ProtocolLimits``' timeouts, every refusal
    a problem (``refuse``), and a ``Date`` header formatted once a second rather than once
    a response."""

    #: Requests answered on this connection (a handler serves one connection).
    served = 0
    _limits: ProtocolLimits = DEFAULT_LIMITS
    #: The connection's idle and head timers (made at its first request).
    _timers: tuple[_Deadline, _Deadline] | None = None

    def protocol_limits(self) -> ProtocolLimits:
        """This server's limits (``NoDelayWSGIServer(protocol_limits=...)``), read once per
        connection."""
        limits = getattr(self.server, "protocol_limits", None)
        return limits if isinstance(limits, ProtocolLimits) else DEFAULT_LIMITS

    def MessageClass(self, stream: Any, *_args: Any) -> RequestHeaders:  # noqa: N802 - pywsgi's name
        """Parse the header block (pywsgi's hook); refuse one too large (431), malformed
        (400) or whose body length is ambiguous (``framing_problem``)."""
        headers = RequestHeaders.read(stream, self._limits.max_header_bytes)
        self.headers = headers
        if headers.status:
            raise _RefusedError(
                problems.headers_too_large()
                if headers.too_large
                else problems.bad_request("The request headers are malformed.")
            )
        problem = framing_problem(headers, self.request_version)
        if problem is not None:
            raise _RefusedError(problem)
        return headers

    def handle_one_request(self) -> bool | None:
        """pywsgi's, with the head read under the connection's timeouts and any request
        it cannot take answered with a problem (``refuse``) instead of a bare 400 or 414.
        True: serve the connection's next request; None: close it."""
        if self.rfile.closed:
            return None
        if not self.served:
            self._limits = self.protocol_limits()
        self.command = self.path = None
        self.headers = _NO_HEADERS
        self.response_length = 0
        head = self._await_head(self._limits)
        if head is not True:
            if head is not False:
                self.refuse(head)
            return None
        self.environ = self.get_environ()
        body: Input = self.wsgi_input  # type: ignore[has-type]
        if body.content_length or body.chunked_input:
            self.wsgi_input = _BoundedDiscard(body, self._limits.header_timeout_s)
        self.application = self.server.application
        self.handle_one_response()
        self.served += 1
        if self.close_connection or self.rfile.closed:
            return None
        return True

    def _await_head(self, limits: ProtocolLimits) -> bool | problems.Problem:
        """Wait for the next request (a kept-alive connection: up to ``idle_timeout_s``),
        then read its head within ``header_timeout_s``. True: read; False: close quietly (the
        client closed, or no request began); a problem: refuse the request."""
        rfile = self.rfile
        timers = self._timers
        if timers is None:  # made once a connection: re-arming one costs a third as much
            late = _LateError()
            # Up to a quarter longer, at random: connections opened together (a slowloris
            # burst) then time out over seconds, not all in one turn of the loop.
            jitter = 1.0 + random.random() * _HEAD_TIMEOUT_JITTER  # noqa: S311 - not secret
            timers = self._timers = (
                _Deadline(limits.idle_timeout_s, late),
                _Deadline(limits.header_timeout_s * jitter, late),
            )
        idle, head = timers
        begun = False
        try:
            if self.served:
                idle.arm()
                try:
                    if not rfile.peek(1):
                        return False
                finally:
                    idle.disarm()
                self.time_start = time.time()
            head.arm()
            try:
                if not rfile.peek(1):
                    return False
                begun = True
                problem = self._read_head()
            finally:
                head.disarm()
        except _LateError:
            return problems.request_timeout() if begun else False
        except OSError:
            return False  # the client reset the connection
        return True if problem is None else problem

    def _read_head(self) -> problems.Problem | None:
        """Read the request line and headers (pywsgi's ``read_request``); the problem of a
        request refused, else None."""
        line = self.rfile.readline(MAX_REQUEST_LINE)
        if len(line) >= MAX_REQUEST_LINE and not line.endswith(b"\n"):
            return problems.uri_too_long(MAX_REQUEST_LINE)
        self.requestline = line.decode("latin-1")
        try:
            self.read_request(self.requestline)
        except _RefusedError as refused:
            return refused.problem
        except Exception:  # noqa: BLE001 - pywsgi's ValueErrors, and its IndexError on "HTTP/1"
            return problems.bad_request("The request line or headers are malformed.")
        return None

    def refuse(self, problem: problems.Problem) -> None:
        """Answer ``problem`` before the application ran, report it, and close gently."""
        rid = request_id(self.headers.get("x-request-id"))
        payload = problem.to_body(rid)
        extra = "".join(
            f"{name}: {value}\r\n"
            for name, value in problem.headers.items()
            if name.lower() != "connection"
        )
        head = (
            f"HTTP/1.1 {problem.status_line}\r\n"
            f"Content-Type: {problems.CONTENT_TYPE}\r\n"
            f"Content-Length: {len(payload)}\r\n"
            f"X-Request-Id: {rid}\r\n"
            "Cache-Control: no-store\r\n"
            f"{extra}"
            f"Date: {http_date(time.time()).decode('latin-1')}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.socket.sendall(head.encode("latin-1") + payload)
        self._report(problem, rid)
        self._linger()

    def _report(self, problem: problems.Problem, rid: str) -> None:
        hook = self._limits.on_refusal
        if hook is None:
            return
        address = self.client_address
        client = str(address[0]) if isinstance(address, tuple) and address else None
        refusal = Refusal(
            status=problem.status,
            code=problem.code,
            request_id=rid,
            method=self.command or "",
            path=(self.path or "").split("?", 1)[0][:_ACCESS_PATH_CHARS],
            client=client,
            latency_ms=max(0.0, (time.time() - self.time_start) * 1000.0),
        )
        try:
            hook(refusal)
        except Exception:  # noqa: BLE001 - the refusal stands; its report is what failed
            _LOG.exception("reporting refused request %s failed", rid)

    def _linger(self) -> None:
        """Stop sending, then read and drop what the client still sends (bounded in time
        and bytes), so that the close does not reset the connection under the answer."""
        sock = self.socket
        try:
            sock.shutdown(socket.SHUT_WR)
            drained = 0
            with gevent.Timeout(_LINGER_S, False):  # noqa: FBT003 - False: ending silently
                while drained < _LINGER_BYTES:
                    chunk = sock.recv(16_384)
                    if not chunk:
                        break
                    drained += len(chunk)
        except OSError:
            pass

    def _handle_client_error(self, ex: BaseException) -> None:
        """pywsgi's hook for a body its reader refused after the application ran (while
        discarding what the application left unread): the answer is already out, so the
        connection is closed, quietly (pywsgi logs these at ERROR, as if a bug)."""
        del ex
        self.close_connection = True

    def _send_error_response_if_possible(self, error_code: int) -> None:
        """pywsgi's last resort for a request that failed outside the application's own
        handling (400: its body broke while being read; 500: a bug, logged by pywsgi): a
        problem if no response has begun, and the connection closed either way."""
        self.close_connection = True
        if self.response_length:
            return
        problem = (
            problems.malformed_body("the body could not be read")
            if error_code < 500  # noqa: PLR2004 - HTTP's own boundary
            else problems.internal_error()
        )
        rid = request_id(self.headers.get("x-request-id"))
        payload = problem.to_body(rid)
        headers = [
            ("Content-Type", problems.CONTENT_TYPE),
            ("Content-Length", str(len(payload))),
            ("X-Request-Id", rid),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
        try:
            self.start_response(problem.status_line, headers)
            self.write(payload)
        except OSError:
            pass
        self._report(problem, rid)

    def finalize_headers(self) -> None:
        """pywsgi's, with the second's ``Date`` (pywsgi skips its own when one is there)."""
        if getattr(self, "provided_date", None) is None:
            date = http_date(time.time())
            self.provided_date = date
            self.response_headers.append((b"Date", date))
        super().finalize_headers()


def http_date(now: float) -> bytes:
    """The IMF-fixdate of ``now`` (RFC 9110 section 5.6.7), made once per second."""
    second = int(now)
    if _DATE[0] != second:
        _DATE[:] = [second, format_date_time(second)]
    return _DATE[1]  # type: ignore[no-any-return]


#: The second ``http_date`` last formatted, and its text.
_DATE: list[Any] = [None, b""]


class NoDelayWSGIServer(WSGIServer):  # type: ignore[misc] # gevent ships no type hints
    """A ``gevent.pywsgi.WSGIServer`` that disables Nagle's algorithm per connection and
    parses headers with ``RequestHeaders``.

    ``connections``: caps on open connections (``frontend/connections.py``; the device
    listener's). A connection is counted as it is accepted, in the accept loop, so the cap
    is exact however many arrive at once; over a cap it is answered with a problem and
    closed there, with no greenlet; it is counted gone when pywsgi closes it. Requests tell
    the caps their connection is in use (``ConnectionLimits.wrap``): a full process shuts
    down a connection that never sent one to make room.

    ``protocol_limits``: the request head's timeouts and size, and the refusal hook
    (``ProtocolLimits``); if None, the served application's own ``protocol_limits``
    (``FrontdoorApp``'s, or the ``DrainableApp`` wrapping it under gunicorn), else
    ``DEFAULT_LIMITS``.
    """

    handler_class = LeanWSGIHandler

    def __init__(
        self,
        *args: Any,
        connections: ConnectionLimits | None = None,
        protocol_limits: ProtocolLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if protocol_limits is None:  # the app's own, read before any wrapper hides it
            protocol_limits = getattr(self.application, "protocol_limits", None)  # type: ignore[has-type]
        self.protocol_limits = (
            protocol_limits if isinstance(protocol_limits, ProtocolLimits) else DEFAULT_LIMITS
        )
        self.connections = connections
        if connections is not None:  # each request tells the caps its connection is in use
            self.application = connections.wrap(self.application)  # type: ignore[has-type]

    def handle(self, sock: socket.socket, address: Any) -> None:
        """Set TCP_NODELAY, then serve the connection as pywsgi does."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)

    def do_handle(self, sock: socket.socket, address: Any) -> None:
        """Admit the connection under ``connections``, or refuse it; then spawn its
        greenlet as gevent does (which calls ``do_close`` when it ends, or on failure)."""
        limits = self.connections
        if limits is not None:
            peer, key = self._peer(address)
            if not limits.admit(peer, key, functools.partial(self._shutdown, sock)):
                self._refuse(sock, limits.refusal(peer))
                return
        super().do_handle(sock, address)

    def do_close(self, sock: socket.socket, address: Any) -> None:
        """Close the connection and count it gone."""
        try:
            super().do_close(sock, address)
        finally:
            if self.connections is not None:
                self.connections.release(*self._peer(address))

    @staticmethod
    def _peer(address: Any) -> tuple[str | None, tuple[str, str] | None]:
        """The client's IP and the connection's key (IP and port as the environ's
        ``REMOTE_ADDR``/``REMOTE_PORT``); None, None for a peer without an address (a Unix
        socket's)."""
        if isinstance(address, tuple) and len(address) > 1:
            return address[0], (str(address[0]), str(address[1]))
        return None, None

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        """End an evicted connection: its greenlet's read returns, and it closes."""
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _refuse(sock: socket.socket, response: bytes) -> None:
        """Answer a just-accepted connection with ``response`` and close it, never waiting:
        a fresh connection's send buffer takes the whole answer in one send. Request bytes
        already there are read first: closing with unread data would reset the connection,
        and the client might lose the answer."""
        try:
            sock.settimeout(0.0)
            with contextlib.suppress(OSError):  # nothing arrived yet: nothing to read
                sock.recv(65_536)
            sock.send(response)
        except OSError:  # the client is gone already
            pass
        finally:
            sock.close()


def abandon_body(environ: Mapping[str, Any]) -> None:
    """Tell pywsgi not to read what is left of this request's body, and to close the
    connection after the response (which must say ``Connection: close``).

    Uses the flag pywsgi itself sets when a body is in an unknown state; on another
    server, or a gevent without it, this does nothing.
    """
    body = environ.get("wsgi.input")
    if body is not None and hasattr(body, "_chunked_input_error"):
        body._chunked_input_error = True  # noqa: SLF001 - pywsgi's own "do not discard" flag
