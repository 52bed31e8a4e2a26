"""The ``requests`` implementation of the wire seam, and the one place its errors are translated.

One ``requests.Session`` per backend, hardened against the library's defaults: proxy
environment variables are ignored, redirects are never followed, urllib3 never retries,
cookies are never kept between calls, and the body is streamed under a byte cap. Every
requests/urllib3/socket exception leaves this module as exactly one ``backends.errors``
exception, chained to the original (``raise ... from exc``).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator, Mapping
from http.cookiejar import DefaultCookiePolicy

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.exceptions import DecodeError as Urllib3DecodeError
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import ProtocolError as Urllib3ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from backends.errors import (
    BackendBodyTooLargeError,
    BackendConnectionError,
    BackendDeadlineError,
    BackendError,
    BackendProtocolError,
    BackendTimeoutError,
)
from backends.specs import BackendSpec
from backends.transport import Transport, WireResponse

__all__ = ["RequestsTransport", "make_transport"]

# Large enough to keep per-chunk overhead negligible, small enough that the cap is
# enforced within one chunk of the limit.
_CHUNK_BYTES = 64 * 1024
# Exception chains are short (requests -> urllib3 -> socket); the bound only guards
# against a pathological self-referencing chain.
_MAX_CHAIN = 8


class RequestsTransport:
    """A ``Transport`` over one ``requests.Session`` dedicated to one backend.

    Safe to share between the greenlets of one backend's bulkhead: the pool holds up to
    ``spec.max_concurrent`` keep-alive connections and never blocks waiting for one.
    """

    __slots__ = ("_session",)

    def __init__(self, spec: BackendSpec) -> None:
        """Build the session and its connection pool; opens no connection yet."""
        session = requests.Session()
        # Proxy variables, .netrc and CA bundle overrides from the environment must not
        # silently reroute internal calls.
        session.trust_env = False
        # A session keeps cookies across calls, and calls carry many devices' requests:
        # a backend's Set-Cookie must never reach another device's call.
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(
            pool_connections=1,
            pool_maxsize=spec.max_concurrent,
            pool_block=False,
            # Retries live in one layer only (backends/retry.py), within a budget.
            max_retries=0,
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
        max_body_bytes: int,
    ) -> WireResponse:
        """Send one request and read its whole reply, capped at ``max_body_bytes``.

        ``timeout_s`` bounds the connect and each socket read, not the whole call: the
        caller bounds the total. Raises only ``backends.errors``.
        """
        if timeout_s <= 0:
            # urllib3 rejects a non-positive timeout with a ValueError; keep the contract.
            raise BackendDeadlineError("no time left to send the call")
        try:
            response = self._session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=(timeout_s, timeout_s),
                allow_redirects=False,
                stream=True,
            )
        except (OSError, Urllib3HTTPError) as exc:  # requests' errors are OSErrors
            raise _translate(exc) from exc
        try:
            payload = _read_capped(response, max_body_bytes)
        except (OSError, Urllib3HTTPError) as exc:
            response.raw.close()
            raise _translate(exc) from exc
        except BaseException:
            # Cap exceeded, or the caller's total timeout fired mid-body: the socket may
            # still hold unread bytes, so it must never go back to the pool.
            response.raw.close()
            raise
        finally:
            # Returns a fully read connection to the pool; a closed one is replaced there.
            response.close()
        return WireResponse(response.status_code, response.headers, payload)

    def close(self) -> None:
        """Close every pooled connection; the transport must not be used afterwards."""
        self._session.close()


def make_transport(spec: BackendSpec) -> Transport:
    """A requests transport for ``spec``, whatever ``spec.transport`` says (for callers that
    want this one); ``backends.transports.make_transport`` picks by configuration."""
    return RequestsTransport(spec)


def _read_capped(response: requests.Response, max_body_bytes: int) -> bytes:
    """Read the (decoded) body, refusing to hold more than ``max_body_bytes``."""
    declared = response.headers.get("Content-Length")
    # Without a content coding the declared length is the body's size: refuse before reading.
    if (
        declared is not None
        and declared.isdigit()
        and int(declared) > max_body_bytes
        and response.headers.get("Content-Encoding", "identity") == "identity"
    ):
        raise BackendBodyTooLargeError("reply body exceeds the byte cap")
    chunks: list[bytes] = []
    size = 0
    # Ask for at most one byte past the cap, so an exact-size body is read in full and
    # a larger one is detected without buffering much more than the cap.
    chunk_bytes = min(_CHUNK_BYTES, max_body_bytes + 1)
    chunk_iter: Iterator[bytes] = response.iter_content(chunk_size=chunk_bytes)
    for chunk in chunk_iter:
        size += len(chunk)
        if size > max_body_bytes:
            raise BackendBodyTooLargeError("reply body exceeds the byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and the ones it wraps, outermost first.

    requests and urllib3 wrap errors in ``args`` (or ``MaxRetryError.reason``) rather
    than always chaining them, so ``__cause__`` alone would miss the socket error.
    """
    current: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if current is None:
            return
        yield current
        if isinstance(current, MaxRetryError):
            current = current.reason
        else:
            current = next(
                (arg for arg in current.args if isinstance(arg, BaseException)),
                current.__cause__,
            )


def _is_timeout(exc: BaseException) -> bool:
    # urllib3's NewConnectionError subclasses ConnectTimeoutError for legacy reasons,
    # but it means refused/unreachable, not slow.
    return isinstance(exc, (requests.Timeout, Urllib3ReadTimeoutError, TimeoutError)) or (
        isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError)
    )


def _translate(exc: BaseException) -> BackendError:
    """Map one requests/urllib3/socket exception onto the backend error tree.

    Messages are fixed reasons: the original, which may name hosts, stays in the chain.
    """
    chain = list(_chain(exc))
    if any(_is_timeout(link) for link in chain):
        return BackendTimeoutError("backend did not answer in time")
    if isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    ):
        return BackendProtocolError("reply body was truncated or badly encoded")
    if any(isinstance(link, (ConnectionError, NewConnectionError)) for link in chain):
        return BackendConnectionError("backend connection refused or reset")
    # A malformed status line or header block (http.client) or body framing (urllib3).
    if any(
        isinstance(link, (http.client.HTTPException, Urllib3ProtocolError, Urllib3DecodeError))
        for link in chain
    ):
        return BackendProtocolError("reply was not valid HTTP")
    if isinstance(exc, requests.ConnectionError):
        return BackendConnectionError("backend could not be reached")
    return BackendError("backend call failed")
