"""RequestsTransport: session hardening, body cap and error translation (over responses)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError, ReadTimeoutError

from backends.errors import (
    BackendBodyTooLargeError,
    BackendConnectionError,
    BackendError,
    BackendProtocolError,
    BackendTimeoutError,
)
from backends.requests_transport import RequestsTransport, make_transport
from backends.specs import BackendSpec

SPEC = BackendSpec(name="catalog", base_url="http://catalog.test", max_concurrent=4)
URL = "http://catalog.test/titles"
CAP = 1_000


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def transport() -> Iterator[RequestsTransport]:
    wire = RequestsTransport(SPEC)
    yield wire
    wire.close()


def _get(transport: RequestsTransport, url: str = URL, timeout_s: float = 0.5):
    return transport.send(
        "GET",
        url,
        headers={"X-Request-Id": "r"},
        body=None,
        timeout_s=timeout_s,
        max_body_bytes=CAP,
    )


def test_make_transport_builds_a_requests_transport():
    """The factory returns the requests implementation."""
    wire = make_transport(SPEC)
    assert isinstance(wire, RequestsTransport)
    wire.close()


def test_pool_is_sized_by_the_spec_and_never_retries(transport):
    """One pool per backend, sized by max_concurrent, non-blocking, with no urllib3 retries."""
    adapter = transport._session.get_adapter(URL)
    assert adapter._pool_maxsize == SPEC.max_concurrent
    assert adapter._pool_block is False
    assert adapter.max_retries.total == 0


def test_redirect_is_returned_not_followed(transport, mock):
    """A 3xx comes back as it is; its target is never requested."""
    mock.get(URL, status=302, headers={"Location": "http://other.test/x"})
    target = mock.get("http://other.test/x", json={})
    reply = _get(transport)
    assert reply.status == 302
    assert target.call_count == 0


def test_proxy_environment_is_ignored(transport, mock, monkeypatch):
    """Proxy variables in the environment never reroute backend calls."""
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    mock.get(URL, json={})
    _get(transport)
    assert transport._session.trust_env is False
    assert "http" not in mock.calls[0].request.req_kwargs["proxies"]


def test_streams_with_connect_and_read_timeouts(transport, mock):
    """The body is streamed and the timeout applies to connect and to each read."""
    mock.get(URL, json={})
    _get(transport, timeout_s=0.25)
    kwargs = mock.calls[0].request.req_kwargs
    assert kwargs["stream"] is True
    assert kwargs["timeout"] == (0.25, 0.25)


def test_cookies_are_not_kept_between_calls(transport, mock):
    """A backend's Set-Cookie is never replayed on a later call (it may be another device's)."""
    mock.get(URL, json={}, headers={"Set-Cookie": "session=abc; Path=/"})
    _get(transport)
    _get(transport)
    assert "Cookie" not in mock.calls[1].request.headers


def test_reply_status_headers_and_body_are_returned(transport, mock):
    """Status, headers and body come back unchanged."""
    mock.get(URL, body=b'{"a":1}', status=201, headers={"X-Thing": "1"})
    reply = _get(transport)
    assert (reply.status, reply.headers["x-thing"], reply.body) == (201, "1", b'{"a":1}')


def test_body_at_the_cap_is_read_whole(transport, mock):
    """A body of exactly the cap is accepted."""
    mock.get(URL, body=b"x" * CAP)
    assert _get(transport).body == b"x" * CAP


def test_streamed_body_over_the_cap_raises(transport, mock):
    """A body without a declared length is cut one byte past the cap."""
    mock.get(URL, body=b"x" * (CAP + 1))
    with pytest.raises(BackendBodyTooLargeError):
        _get(transport)


def test_declared_length_over_the_cap_raises(transport, mock):
    """A Content-Length above the cap is refused before the body is read."""
    # The body is shorter than declared: reading it would fail as truncated instead.
    mock.get(URL, body=b"x", headers={"Content-Length": str(CAP * 3)})
    with pytest.raises(BackendBodyTooLargeError):
        _get(transport)


def test_non_positive_timeout_raises_without_sending(transport, mock):
    """No call is sent with no time left."""
    with pytest.raises(BackendTimeoutError):
        _get(transport, timeout_s=0)
    assert len(mock.calls) == 0


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        pytest.param(requests.ConnectTimeout(), BackendTimeoutError, id="connect-timeout"),
        pytest.param(requests.ReadTimeout(), BackendTimeoutError, id="read-timeout"),
        pytest.param(
            requests.ConnectionError(ReadTimeoutError(None, URL, "read timed out")),
            BackendTimeoutError,
            id="body-read-timeout",
        ),
        pytest.param(TimeoutError(), BackendTimeoutError, id="socket-timeout"),
        pytest.param(
            requests.ConnectionError(MaxRetryError(None, URL, NewConnectionError(None, "refused"))),
            BackendConnectionError,
            id="refused",
        ),
        pytest.param(
            requests.ConnectionError(ProtocolError("aborted", ConnectionResetError(104, "reset"))),
            BackendConnectionError,
            id="reset",
        ),
        pytest.param(ConnectionRefusedError(111, "refused"), BackendConnectionError, id="socket"),
        pytest.param(
            requests.ConnectionError(ProtocolError("aborted", http.client.BadStatusLine("x"))),
            BackendProtocolError,
            id="bad-status-line",
        ),
        pytest.param(
            requests.exceptions.ChunkedEncodingError(), BackendProtocolError, id="chunked"
        ),
        pytest.param(
            requests.exceptions.ContentDecodingError(), BackendProtocolError, id="decoding"
        ),
        pytest.param(requests.exceptions.InvalidURL(), BackendError, id="other-request-error"),
        pytest.param(requests.exceptions.RetryError(), BackendError, id="retry-error"),
    ],
)
def test_library_errors_are_translated_once(transport, mock, raised, expected):
    """Each requests/urllib3/socket error becomes one backend error, chained to the original."""
    mock.get(URL, body=raised)
    with pytest.raises(BackendError) as info:
        _get(transport)
    assert type(info.value) is expected
    assert info.value.__cause__ is raised
    assert "catalog.test" not in str(info.value)
