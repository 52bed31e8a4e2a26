"""orchestrator.frontend.problems: RFC 9457 bodies with stable codes, headers and no leaks."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.frontend import problems
from orchestrator.frontend.problems import CODES, CONTENT_TYPE, Problem

# One factory call per code: the registry lists nothing a device can never receive.
EXAMPLES = {
    "bad_request": problems.bad_request("batch is empty"),
    "invalid_parameter": problems.invalid_parameter("rows", "must be <= 40"),
    "malformed_json": problems.malformed_json("Expecting value"),
    "malformed_body": problems.malformed_body("more than one Content-Length"),
    "unsupported_transfer_coding": problems.unsupported_transfer_coding(),
    "invalid_fields": problems.invalid_fields("unknown field 'x'", 3, allowed=["rows"]),
    "invalid_batch": problems.invalid_batch("a batch may not contain a batch"),
    "unauthorized": problems.unauthorized(),
    "forbidden": problems.forbidden(),
    "not_found": problems.not_found("/v1/nope"),
    "method_not_allowed": problems.method_not_allowed(["GET"]),
    "request_timeout": problems.request_timeout(),
    "payload_too_large": problems.payload_too_large(65_536),
    "uri_too_long": problems.uri_too_long(8192),
    "unsupported_media_type": problems.unsupported_media_type(),
    "rate_limited": problems.rate_limited(2),
    "headers_too_large": problems.headers_too_large(),
    "internal_error": problems.internal_error(),
    "dependency_unavailable": problems.dependency_unavailable(),
    "overloaded": problems.overloaded(1),
    "deadline_exceeded": problems.deadline_exceeded(),
    "backend_timeout": problems.backend_timeout(),
    "payment_declined": problems.refused("payment_declined", "The card was declined.", "card"),
    "already_exists": problems.refused("already_exists", "The e-mail is taken.", "email"),
}


def _body(problem: Problem, request_id: str = "req-1") -> dict[str, object]:
    return json.loads(problem.to_body(request_id))


def test_every_code_has_a_factory():
    """Each registered code is produced by a factory, with the registered status and title."""
    assert set(EXAMPLES) == set(CODES)
    for code, problem in EXAMPLES.items():
        assert problem.code == code
        assert (problem.status, problem.title) == (CODES[code].status, CODES[code].title)


def test_a_refusal_names_the_parameter_only_when_there_is_one():
    """``refused`` carries the endpoint's detail, and ``parameter`` only when given."""
    named = _body(problems.refused("already_exists", "The e-mail is taken.", "email"))
    assert (named["status"], named["detail"], named["parameter"]) == (
        409,
        "The e-mail is taken.",
        "email",
    )
    assert "parameter" not in _body(problems.refused("not_found", "No such title."))


def test_a_dependency_refused_here_says_when_to_come_back():
    """Only a 503 for a call Frontdoor refused itself carries ``Retry-After``."""
    assert dict(problems.dependency_unavailable(1.0).headers) == {"Retry-After": "1"}
    assert "Retry-After" not in dict(problems.dependency_unavailable().headers)


def test_codes_are_stable_snake_case_errors():
    """Codes are snake_case, statuses are 4xx or 5xx, titles are short and set."""
    for code, problem_type in CODES.items():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code)
        assert 400 <= problem_type.status <= 599
        assert 0 < len(problem_type.title) <= 40


def test_body_has_the_rfc_9457_members():
    """The body carries type, title, status, detail, code and request_id, in that order."""
    body = _body(problems.not_found("/v1/nope"), "abc123")
    assert list(body) == ["type", "title", "status", "detail", "code", "request_id"]
    assert body == {
        "type": "https://frontdoor.example/problems/not_found",
        "title": "Not found",
        "status": 404,
        "detail": "No endpoint at /v1/nope.",
        "code": "not_found",
        "request_id": "abc123",
    }
    assert CONTENT_TYPE == "application/problem+json"


def test_every_example_renders_valid_json():
    """Every factory's problem renders to compact ASCII JSON with its status."""
    for problem in EXAMPLES.values():
        raw = problem.to_body("r")
        assert raw.isascii()
        body = json.loads(raw)
        assert raw == json.dumps(body, separators=(",", ":")).encode()
        assert body["status"] == problem.status


def test_status_line_is_wsgi_ready():
    """status_line gives the code and the standard reason phrase."""
    assert problems.not_found("/").status_line == "404 Not Found"
    assert problems.headers_too_large().status_line == "431 Request Header Fields Too Large"


def test_invalid_parameter_names_the_parameter():
    """invalid_parameter adds a parameter member and says why."""
    body = _body(problems.invalid_parameter("rows", "must be <= 40"))
    assert body["parameter"] == "rows"
    assert body["detail"] == "Parameter 'rows' is invalid: must be <= 40"
    assert body["status"] == 400


def test_method_not_allowed_lists_methods_in_body_and_allow_header():
    """405 lists the allowed methods once each, upper-cased, in Allow and in allowed."""
    problem = problems.method_not_allowed(["get", "HEAD", "GET"])
    assert problem.headers == {"Allow": "GET, HEAD"}
    assert _body(problem)["allowed"] == ["GET", "HEAD"]


def test_unauthorized_challenges_bearer_without_reason():
    """401 asks for a Bearer token and never says why a token failed."""
    missing = problems.unauthorized()
    rejected = problems.unauthorized(invalid_token=True)
    assert missing.headers == {"WWW-Authenticate": "Bearer"}
    assert rejected.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert missing.detail == rejected.detail == "A valid bearer token is required."


@pytest.mark.parametrize(("seconds", "header"), [(0, "1"), (0.2, "1"), (1, "1"), (2.5, "3")])
def test_overloaded_sends_retry_after_in_whole_seconds(seconds, header):
    """Retry-After is rounded up to whole seconds and is at least 1."""
    problem = problems.overloaded(seconds)
    assert problem.status == 503
    assert problem.headers == {"Retry-After": header}


def test_retry_after_must_be_finite():
    """A NaN or infinite delay is a programming error, caught at the raise site."""
    with pytest.raises(ValueError, match="finite"):
        problems.rate_limited(float("nan"))


def test_payload_too_large_gives_the_limit():
    """413 says the limit as a member."""
    assert _body(problems.payload_too_large(1024))["max_bytes"] == 1024


def test_generic_5xx_details_reveal_nothing():
    """5xx problems have fixed details: no hosts, backends or exception text."""
    for problem in (
        problems.internal_error(),
        problems.dependency_unavailable(),
        problems.deadline_exceeded(),
        problems.backend_timeout(),
    ):
        assert set(_body(problem)) == {"type", "title", "status", "detail", "code", "request_id"}
        assert "http" not in problem.detail
        assert "Traceback" not in problem.detail


def test_echoed_device_input_is_clipped_and_escaped():
    """A long or hostile path is cut and escaped, so the body stays small and ASCII."""
    path = "/v1/" + "é<script>\n" * 100
    raw = problems.not_found(path).to_body("r")
    assert raw.isascii()
    assert len(raw) < 1000
    assert json.loads(raw)["detail"].endswith("....")


def test_problem_is_an_exception_with_a_useful_str():
    """A Problem can be raised and caught, and reads well in logs."""
    with pytest.raises(Problem) as caught:
        raise problems.forbidden()
    assert str(caught.value) == "forbidden: These credentials do not allow this request."
    assert repr(caught.value).startswith("Problem('forbidden'")


def test_custom_problem_with_extras_and_headers():
    """A Problem built directly carries its extras and headers, read-only."""
    problem = Problem(
        "bad_request",
        "Too many calls in one batch.",
        extras={"limit": 10, "paths": ("/a", "/b")},
        headers={"X-Frontdoor-Hint": "split"},
    )
    assert _body(problem)["paths"] == ["/a", "/b"]
    assert problem.extras["limit"] == 10
    with pytest.raises(TypeError):
        problem.headers["X"] = "y"  # type: ignore[index]


def test_unknown_code_is_refused():
    """Only registered codes can be raised."""
    with pytest.raises(ValueError, match="unknown problem code"):
        Problem("teapot", "short and stout")


def test_extras_cannot_overwrite_standard_members():
    """Extras named like RFC or Frontdoor members are refused."""
    with pytest.raises(ValueError, match="redefine"):
        Problem("bad_request", "x", extras={"status": 200})


def test_header_injection_is_refused():
    """A CR or LF in a header value cannot reach the response."""
    with pytest.raises(ValueError, match="CR or LF"):
        Problem("bad_request", "x", headers={"X-A": "1\r\nSet-Cookie: a=b"})


@pytest.mark.parametrize("value", [object(), float("nan"), {"k": {1, 2}}])
def test_non_json_extras_are_refused_at_construction(value):
    """Extras that JSON cannot carry fail where the problem is built, not when rendered."""
    with pytest.raises((TypeError, ValueError)):
        Problem("bad_request", "x", extras={"bad": value})


@given(path=st.text(), reason=st.text(), request_id=st.text(max_size=64))
def test_any_device_text_renders_to_valid_json(path, reason, request_id):
    """Whatever text a device sends, the problem body is valid ASCII JSON with our members."""
    for problem in (problems.not_found(path), problems.invalid_parameter(path, reason)):
        raw = problem.to_body(request_id)
        assert raw.isascii()
        body = json.loads(raw)
        assert body["request_id"] == request_id
        assert body["code"] == problem.code
