"""BackendClient: budget, headers, status mapping and strict JSON decoding (over responses)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

import gevent.event
import pytest
import responses

from backends.client import BackendClient
from backends.errors import (
    BackendDeadlineError,
    BackendProtocolError,
    BackendStatusError,
    BackendTimeoutError,
)
from backends.requests_transport import RequestsTransport
from backends.specs import BackendSpec
from backends.transport import BackendRequest, WireResponse, get, post

SPEC = BackendSpec(name="catalog", base_url="http://catalog.test/api/", timeout_ms=500)
URL = "http://catalog.test/api/titles"


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class FakeTransport:
    """Answers every call with one canned reply and records what it was asked.

    With ``hang``, it stands in for a backend that never answers (bounded at 5 s, so a
    broken client fails the test instead of hanging it).
    """

    def __init__(self, reply: WireResponse, *, hang: bool = False) -> None:
        self.reply = reply
        self.hang = hang
        self.sent: list[dict[str, object]] = []
        self.closed = False

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
        self.sent.append(
            {
                "method": method,
                "url": url,
                "headers": dict(headers),
                "body": body,
                "timeout_s": timeout_s,
                "max_body_bytes": max_body_bytes,
            }
        )
        if self.hang:
            gevent.event.Event().wait(timeout=5)
        return self.reply

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def client(clock: FakeClock) -> Iterator[BackendClient]:
    backend = BackendClient(SPEC, RequestsTransport(SPEC), clock)
    yield backend
    backend.close()


def _call(client: BackendClient, clock: FakeClock, request: BackendRequest | None = None) -> object:
    return client.call(request or get("titles"), deadline=clock.now + 10, request_id="req-1")


def test_get_sends_request_id_deadline_and_accept(client, clock, mock):
    """A GET carries the request id, the remaining budget and Accept, but no Content-Type."""
    mock.get(URL, json={"ok": True})
    assert _call(client, clock) == {"ok": True}
    sent = mock.calls[0].request.headers
    assert sent["X-Request-Id"] == "req-1"
    assert sent["X-Frontdoor-Deadline-Ms"] == "500"
    assert sent["Accept"] == "application/json"
    assert "Content-Type" not in sent


def test_deadline_header_is_the_time_left_when_the_deadline_is_nearer(client, clock, mock):
    """The deadline header carries the request's remaining ms when that is below the timeout."""
    mock.get(URL, json=[])
    client.call(get("titles"), deadline=clock.now + 0.25, request_id="r")
    assert mock.calls[0].request.headers["X-Frontdoor-Deadline-Ms"] == "250"


def test_post_sends_compact_json(client, clock, mock):
    """A body is sent as compact JSON with a JSON Content-Type."""
    mock.post(URL, json={})
    _call(client, clock, post("titles", body={"ids": [1, 2], "q": "é"}))
    sent = mock.calls[0].request
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.body == b'{"ids":[1,2],"q":"\\u00e9"}'


def test_url_joins_base_and_encoded_target(client, clock, mock):
    """The base URL's trailing slash is dropped and segments are percent-encoded."""
    mock.get("http://catalog.test/api/titles/a%2F..%2Fb", json={})
    _call(client, clock, get("titles", "a/../b", lang="en"))
    assert mock.calls[0].request.url == "http://catalog.test/api/titles/a%2F..%2Fb?lang=en"


def test_a_request_adds_headers_but_cannot_replace_the_clients_own(client, clock, mock):
    """Extra headers go out; a request id or deadline in them is ignored, whatever its case."""
    mock.get("http://catalog.test/api/titles", json={})
    request = get("titles")
    extra = (("X-Frontdoor-Enrichment", "e30"), ("x-request-id", "forged"))
    _call(client, clock, dataclasses.replace(request, headers=extra))
    sent = mock.calls[0].request.headers
    assert sent["X-Frontdoor-Enrichment"] == "e30"
    assert sent["X-Request-Id"] != "forged"
    assert dataclasses.replace(request, headers=extra).key() != request.key()


def test_query_values_keep_commas_and_encode_the_rest():
    """A list of ids goes as ids=a,b (allowed in a query, and urllib3's fast path); any
    character that could change the query's meaning is still encoded."""
    target = get("titles", ids="t1,t2", q="a&b=c d").target()
    assert target == "/titles?ids=t1,t2&q=a%26b%3Dc+d"


@pytest.mark.parametrize("left_s", [0.0, -1.0, 0.0004])
def test_exhausted_budget_raises_without_sending(client, clock, mock, left_s):
    """No call is sent when less than a millisecond is left before the deadline; the error
    says so, so that the backend's breaker does not count it."""
    with pytest.raises(BackendDeadlineError) as raised:
        client.call(get("titles"), deadline=clock.now + left_s, request_id="r")
    assert len(mock.calls) == 0
    assert (raised.value.counts_as_failure, raised.value.retryable) == (False, False)


def test_transport_gets_the_budget_and_body_cap(clock):
    """The transport is given the call's budget as its timeout and the spec's body cap."""
    transport = FakeTransport(WireResponse(200, {}, b"{}"))
    client = BackendClient(SPEC, transport, clock)
    client.call(get("x"), deadline=clock.now + 0.1, request_id="r")
    [sent] = transport.sent
    assert (sent["method"], sent["url"], sent["body"]) == ("GET", "http://catalog.test/api/x", None)
    assert sent["timeout_s"] == pytest.approx(0.1)
    assert sent["max_body_bytes"] == SPEC.max_body_bytes


def test_total_budget_bounds_a_transport_that_never_returns():
    """The whole call is cut at its budget with BackendTimeoutError, never gevent.Timeout."""
    spec = BackendSpec(name="slow", base_url="http://slow.test", timeout_ms=20)
    client = BackendClient(spec, FakeTransport(WireResponse(200, {}, b"{}"), hang=True))
    with pytest.raises(BackendTimeoutError, match="time budget"):
        client.call(get("x"), deadline=float("inf"), request_id="r")


def test_close_closes_the_transport(clock):
    """Closing the client releases its transport."""
    transport = FakeTransport(WireResponse(200, {}, b"{}"))
    BackendClient(SPEC, transport, clock).close()
    assert transport.closed


@pytest.mark.parametrize(
    ("status", "counts"),
    [(400, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
def test_status_maps_to_status_error(client, clock, mock, status, counts):
    """Non-2xx statuses raise BackendStatusError; only 5xx, 408 and 429 count for the breaker."""
    mock.get(URL, status=status, json={"error": "x"})
    with pytest.raises(BackendStatusError) as info:
        _call(client, clock)
    assert info.value.status == status
    assert info.value.counts_as_failure is counts


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_a_protocol_error(client, clock, mock, status):
    """A redirect is not followed and is reported as a protocol error."""
    mock.get(URL, status=status, headers={"Location": "http://elsewhere.test/"})
    with pytest.raises(BackendProtocolError, match="redirect not followed"):
        _call(client, clock)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, b"secret-xyz", BackendStatusError),
        (200, b"<b>secret-xyz</b>", BackendProtocolError),
        (200, b'{"secret-xyz": NaN}', BackendProtocolError),
    ],
)
def test_error_messages_never_carry_the_body(client, clock, mock, status, body, error):
    """Exception messages are fixed reasons: no backend body text leaks into them."""
    mock.get(URL, status=status, body=body)
    with pytest.raises(error) as info:
        _call(client, clock)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": [1, 2.5, "\\u00e9"]}', {"a": [1, 2.5, "é"]}),
        (b" [] ", []),
        (b'["\\ud83d\\ude00"]', ["\U0001f600"]),
        ('{"t":"ü"}'.encode(), {"t": "ü"}),
    ],
)
def test_accepts_json_objects_and_arrays(client, clock, mock, body, expected):
    """A 2xx object or array decodes, including escaped surrogate pairs."""
    mock.get(URL, body=body)
    assert _call(client, clock) == expected


def test_a_repeated_key_keeps_its_last_value(client, clock, mock):
    """Backend replies have one reader, so a repeated key is not refused: the last wins."""
    mock.get(URL, body=b'{"a": 1, "b": {"x": 1, "x": 2}, "a": 3}')
    assert _call(client, clock) == {"a": 3, "b": {"x": 2}}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"a": NaN}', id="nan"),
        pytest.param(b"[Infinity]", id="infinity"),
        pytest.param(b"[-Infinity]", id="minus-infinity"),
        pytest.param(b"[1e400]", id="float-overflow"),
        pytest.param(b'{"a": "\xe9"}', id="latin-1"),
        pytest.param(b'\xef\xbb\xbf{"a": 1}', id="utf-8-bom"),
        pytest.param(b'["\\ud800"]', id="lone-surrogate"),
        pytest.param(b'{"\\udc00": 1}', id="lone-surrogate-key"),
        pytest.param(b"1", id="number"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"true", id="bool"),
        pytest.param(b"", id="empty"),
        pytest.param(b"{} {}", id="trailing-data"),
        pytest.param(b"<html></html>", id="html"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
        pytest.param(b"[" + b"9" * 5_000 + b"]", id="huge-integer"),
    ],
)
def test_rejects_malformed_json(client, clock, mock, body):
    """Anything but strict UTF-8 JSON with an object or array at the top is a protocol error."""
    mock.get(URL, body=body)
    with pytest.raises(BackendProtocolError):
        _call(client, clock)


def test_unencodable_request_body_is_the_callers_error(client, clock, mock):
    """A body that is not JSON (NaN) raises ValueError, not a backend error, and is not sent."""
    with pytest.raises(ValueError, match="JSON"):
        _call(client, clock, post("titles", body={"x": float("nan")}))
    assert len(mock.calls) == 0
