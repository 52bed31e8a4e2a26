"""Replay and diff: JSON paths, normalisation, comparison, the recording format, the access
log conversion, the capture proxy, and ``replay run`` against loopback WSGI servers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import gevent
import gevent.event
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.httpserver import NoDelayWSGIServer
from orchestrator.loadtest.client import HttpClient
from orchestrator.loadtest.recording import (
    Capture,
    RecordedRequest,
    RecordedResponse,
    RecordingError,
    from_access_log,
    member_of,
    read_recording,
    write_recording,
)
from orchestrator.loadtest.replay import (
    DEFAULT_IGNORE,
    EXIT_DIFFERENCES,
    Outcome,
    PathError,
    changed_paths,
    compare,
    main,
    normalise,
    parse_path,
    route_of,
)
from orchestrator.loadtest.target import Target, parse_target

IGNORE = tuple(parse_path(p) for p in DEFAULT_IGNORE)
JSON = "application/json"


def _ok(body: object, status: int = 200) -> Outcome:
    return Outcome(status, JSON, json.dumps(body).encode())


# -- paths and normalisation ---------------------------------------------------------------


def test_paths_parse_keys_indexes_wildcards_and_descent():
    """Each segment form is read; anything else is refused with the path in the message."""
    assert parse_path("$.rows[*].trace").segments == (
        ("key", "rows"),
        ("each", None),
        ("key", "trace"),
    )
    assert parse_path("$..request_id['a b'][-1].*").segments == (
        ("deep", "request_id"),
        ("key", "a b"),
        ("index", -1),
        ("each", None),
    )
    for bad in ("rows", "$", "$.rows[", "$.a b"):
        with pytest.raises(PathError, match=r"rows|\$"):
            parse_path(bad)


def test_normalise_drops_volatile_fields_at_any_depth_and_leaves_the_input_alone():
    """$..request_id goes everywhere, $.rows[*].trace in every row; the rest stays."""
    body = {"request_id": "r1", "rows": [{"id": 1, "trace": "x", "n": {"request_id": "r2"}}]}
    paths = [parse_path("$..request_id"), parse_path("$.rows[*].trace")]
    assert normalise(body, paths) == {"rows": [{"id": 1, "n": {}}]}
    assert body["request_id"] == "r1"


def test_unordered_arrays_are_sorted_after_the_volatile_fields_are_dropped():
    """Two lists with the same items in another order compare equal; items are compared
    without their ignored fields."""
    unordered = [parse_path("$.items")]
    ignore = [parse_path("$.items[*].at")]
    left = normalise({"items": [{"id": 2, "at": 1}, {"id": 1, "at": 9}]}, ignore, unordered)
    right = normalise({"items": [{"id": 1, "at": 5}, {"id": 2, "at": 0}]}, ignore, unordered)
    assert left == right == {"items": [{"id": 1}, {"id": 2}]}


JSON_VALUES = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "request_id", "token"]), inner)
    ),
)


@given(JSON_VALUES)
def test_normalising_any_json_with_the_default_paths_never_fails_and_is_idempotent(body):
    """Whatever a target answers, normalisation neither raises nor changes a second time."""
    once = normalise(body, [*IGNORE, parse_path("$..a[*]"), parse_path("$.b[0]")])
    assert normalise(once, IGNORE) == once


def test_changed_paths_name_each_differing_leaf_and_a_length_change():
    """The report says where two bodies differ, not only that they do."""
    left = {"a": 1, "b": [1, 2], "c": {"d": "x"}}
    right = {"a": 2, "b": [1], "c": {"d": "x", "e": 0}}
    assert changed_paths(left, right) == ["$.a", "$.b (length 2 vs 1)", "$.c.e"]


def test_routes_group_requests_by_path_with_ids_folded():
    """Ids in a path become {id}; the query is not part of the route."""
    assert route_of("GET", "/v1/discovery/titles/t42?fields=x") == "GET /v1/discovery/titles/{id}"
    assert route_of("GET", "/v2/discovery/home?rows=1") == "GET /v2/discovery/home"


# -- comparing outcomes --------------------------------------------------------------------


def test_bodies_that_differ_only_in_volatile_fields_match():
    """Request ids and tokens differ in every answer; they are not a difference."""
    a = _ok({"code": "x", "request_id": "1", "token": "t1", "meta": {"degraded": ["a", "b"]}})
    b = _ok({"code": "x", "request_id": "2", "token": "t2", "meta": {"degraded": ["b", "a"]}})
    unordered = [parse_path("$.meta.degraded")]
    assert compare(a, b, ignore=IGNORE, unordered=unordered) is None


def test_a_changed_field_is_reported_with_its_path_and_a_unified_diff():
    """The diff shows the old and new value under the targets' labels."""
    difference = compare(_ok({"duration_s": 8340}), _ok({"duration_s": 139}), labels=("A", "B"))
    assert difference is not None
    assert (difference.kind, difference.paths) == ("body", ("$.duration_s",))
    assert difference.diff[:2] == ("--- A", "+++ B")
    assert '-  "duration_s": 8340' in difference.diff
    assert '+  "duration_s": 139' in difference.diff


def test_status_media_type_and_missing_responses_are_differences():
    """Each is its own kind; a request that got no response never passes, even on both."""
    assert compare(_ok({}), _ok({}, 500)).kind == "status"
    html = Outcome(200, "text/html; charset=utf-8", b"{}")
    assert compare(_ok({}), html).kind == "content_type"
    assert compare(_ok({}), Outcome(None, error="timeout")).kind == "no_response"
    both = compare(Outcome(None, error="timeout"), Outcome(None, error="timeout"))
    assert both is not None
    assert both.kind == "no_response"


def test_without_a_recorded_body_only_the_status_is_compared():
    """An access-log recording keeps the status only."""
    assert compare(_ok({"any": 1}), Outcome(200)) is None
    assert compare(_ok({"any": 1}), Outcome(404)).kind == "status"


def test_bodies_that_are_not_json_are_compared_as_text():
    """A plain-text answer still gets a diff."""
    a, b = Outcome(200, "text/plain", b"one\n"), Outcome(200, "text/plain", b"two\n")
    difference = compare(a, b)
    assert difference is not None
    assert (difference.diff[3], difference.diff[4]) == ("-one", "+two")
    assert compare(a, a) is None


# -- the recording format and its sources --------------------------------------------------


def test_a_recording_round_trips_and_is_read_in_arrival_order(tmp_path: Path):
    """What is written is read back, sorted by arrival."""
    late = RecordedRequest(0.5, "POST", "/v1/playback/play", (("Content-Type", JSON),),
                           auth=True, member="m1", body='{"title_id":"t42"}',
                           response=RecordedResponse(200, JSON, "{}"))  # fmt: skip
    early = RecordedRequest(0.1, "GET", "/v1/nonmember/plans?country=US")
    path = tmp_path / "rec.jsonl"
    with path.open("w") as file:
        write_recording(file, "test", [late, early])
    recording = read_recording(path)
    assert recording.source == "test"
    assert recording.requests == (early, late)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not JSON"),
        ('{"at_s": -1, "method": "GET", "path": "/x"}', "at_s"),
        ('{"at_s": 0, "method": "GET", "path": "x"}', "path"),
        ('{"at_s": 0, "method": "GET", "path": "/x", "response": {"status": 42}}', "status"),
    ],
)
def test_a_bad_line_is_refused_naming_the_file_and_line(tmp_path: Path, line, message):
    """The error points at the line to fix."""
    path = tmp_path / "rec.jsonl"
    path.write_text('{"frontdoor_recording": 1}\n' + line + "\n")
    with pytest.raises(RecordingError, match=rf"rec\.jsonl:2: .*{message}"):
        read_recording(path)


def test_a_file_without_the_header_is_not_a_recording(tmp_path: Path):
    """An access log passed to run by mistake is refused, not replayed as nothing."""
    path = tmp_path / "frontdoor.log"
    path.write_text('{"event": "access"}\n')
    with pytest.raises(RecordingError, match="not a recording"):
        read_recording(path)


def _access(time: str, path: str, *, method="GET", query_chars=0, latency_ms=0.0, status=200):
    return json.dumps({"time": time, "logger": "frontdoor.access", "event": "access",
                       "method": method, "path": path, "query_chars": query_chars,
                       "status": status, "latency_ms": latency_ms})  # fmt: skip


def test_the_access_log_converts_what_it_holds_and_counts_what_it_does_not():
    """GETs without a query convert, at their arrival (logged time less latency); requests
    whose query or body the log does not keep, and operators' paths, are counted."""
    lines = [
        "plain text from somewhere",
        _access("2026-12-06T10:00:01.000Z", "/v1/discovery/titles/t7", latency_ms=500.0),
        _access("2026-12-06T10:00:00.600Z", "/v1/discovery/titles/t42", status=404),
        _access("2026-12-06T10:00:02.000Z", "/v1/discovery/home", query_chars=12),
        _access("2026-12-06T10:00:02.000Z", "/v1/playback/play", method="POST"),
        _access("2026-12-06T10:00:02.000Z", "/healthz"),
    ]
    conversion = from_access_log(lines, member="m9")
    assert [(r.at_s, r.path, r.response.status) for r in conversion.requests] == [
        (0.0, "/v1/discovery/titles/t7", 200),
        (0.1, "/v1/discovery/titles/t42", 404),
    ]
    assert all(r.auth and r.member == "m9" for r in conversion.requests)
    assert conversion.skipped == {
        "query not logged": 1,
        "body not logged": 1,
        "not a device request": 1,
    }


def test_the_member_is_read_from_a_member_token_only():
    """A member token names its member; an admin token or garbage names no one."""
    signer = TokenSigner(b"0123456789abcdef0123456789abcdef", 3600)
    assert member_of(f"Bearer {signer.issue('m42')}") == "m42"
    assert member_of(f"Bearer {signer.issue('ops', 'admin')}") is None
    assert member_of("Bearer not.a.token") is None
    assert member_of("Basic abc") is None


# -- the capture proxy ---------------------------------------------------------------------


def _upstream(environ, start_response):
    body = json.dumps({"path": environ["PATH_INFO"], "query": environ["QUERY_STRING"],
                       "token": environ.get("HTTP_AUTHORIZATION", "")}).encode()  # fmt: skip
    start_response("200 OK", [("Content-Type", JSON), ("X-Request-Id", "abc")])
    return [body]


@pytest.fixture
def upstream():
    server = NoDelayWSGIServer(("127.0.0.1", 0), _upstream, log=None)
    server.start()
    yield Target("127.0.0.1", server.server_port)
    server.stop(timeout=1)


def _environ(path: str, query: str = "", **headers: str) -> dict[str, object]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
            "wsgi.input": io.BytesIO(b""), **headers}  # fmt: skip


def test_the_capture_proxy_forwards_and_records_without_credentials(upstream: Target):
    """The device gets the target's answer; the line keeps the query, the kept headers, the
    member and the response, never a token: not the request's, not one in the response."""
    out = io.StringIO()
    capture = Capture(upstream, out, keep_responses=True, max_requests=2)
    token = TokenSigner(b"0123456789abcdef0123456789abcdef", 3600).issue("m5")
    statuses: list[str] = []
    environ = _environ("/v1/x", "a=1", HTTP_AUTHORIZATION=f"Bearer {token}",
                       HTTP_X_DEVICE_TYPE="tv", HTTP_COOKIE="c=1")  # fmt: skip
    reply = b"".join(capture(environ, lambda status, _headers: statuses.append(status)))
    assert statuses == ["200 OK"]
    assert json.loads(reply)["token"] == f"Bearer {token}"
    line = json.loads(out.getvalue())
    assert (line["path"], line["member"], line["headers"]) == (
        "/v1/x?a=1",
        "m5",
        {"X-Device-Type": "tv"},
    )
    assert token not in out.getvalue()
    assert json.loads(line["response"]["body"]) == {
        "path": "/v1/x",
        "query": "a=1",
        "token": "[redacted]",
    }
    assert not capture.done.is_set()


def test_the_capture_proxy_stops_recording_at_its_limit_and_skips_operator_paths(
    upstream: Target,
):
    """/healthz is forwarded, not recorded; ``done`` is set at max_requests; without
    keep_responses only the status and type of the answer are kept."""
    out = io.StringIO()
    capture = Capture(upstream, out, max_requests=1)
    for path in ("/healthz", "/v1/a", "/v1/b"):
        b"".join(capture(_environ(path), lambda *_: None))
    assert [json.loads(line)["path"] for line in out.getvalue().splitlines()] == ["/v1/a"]
    assert capture.done.is_set()
    assert json.loads(out.getvalue())["response"] == {"status": 200, "content_type": JSON}


def test_the_capture_proxy_answers_502_when_the_target_is_down():
    """A dead target is the device's 502; the request is still recorded."""
    out = io.StringIO()
    capture = Capture(Target("127.0.0.1", 1), out, timeout_s=2)
    statuses: list[str] = []
    b"".join(capture(_environ("/v1/a"), lambda status, _h: statuses.append(status)))
    assert statuses == ["502 Bad Gateway"]
    assert json.loads(out.getvalue())["path"] == "/v1/a"


# -- replay run ----------------------------------------------------------------------------


def _target_app(changed: bool):
    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        body = {"path": path, "request_id": environ.get("HTTP_AUTHORIZATION", "")[-6:],
                "value": 2 if changed and path == "/v1/changed" else 1}  # fmt: skip
        start_response("200 OK", [("Content-Type", JSON)])
        return [json.dumps(body).encode()]

    return app


@pytest.fixture
def targets():
    servers = [NoDelayWSGIServer(("127.0.0.1", 0), _target_app(c), log=None) for c in (0, 0, 1)]
    for server in servers:
        server.start()
    yield [f"http://127.0.0.1:{server.server_port}" for server in servers]
    for server in servers:
        server.stop(timeout=1)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "rec.jsonl"
    requests = [
        RecordedRequest(0.01 * i, "GET", p, auth=True, member=f"m{i}",
                        response=RecordedResponse(200, JSON, json.dumps({"path": p, "value": 1})))
        for i, p in enumerate(["/v1/same", "/v1/changed", "/v1/same", "/v1/changed"])
    ]  # fmt: skip
    with path.open("w") as file:
        write_recording(file, "test", requests)
    return path


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    argv = (argv[0], "--token", "tok", "--rate-scale", "10", *argv[1:])
    return main(["run", *argv], out=out), out.getvalue()


def test_two_equal_targets_have_no_differences(targets, recording):
    """Exit 0 and every request counted as the same."""
    code, text = _run(str(recording), "--target", targets[0], "--target", targets[1])
    assert code == 0, text
    assert "replay: no differences in 4 compared requests" in text


def test_the_changed_endpoint_is_reported_for_exactly_its_requests(targets, recording, tmp_path):
    """Exit 99; the JSON report lists the two requests of /v1/changed and the field."""
    report_path = tmp_path / "report.json"
    code, text = _run(str(recording), "--target", targets[0], "--target", targets[2],
                      "--json", str(report_path))  # fmt: skip
    assert code == EXIT_DIFFERENCES, text
    report = json.loads(report_path.read_text())
    assert [(d["index"], d["path"], d["paths"]) for d in report["differences"]] == [
        (1, "/v1/changed", ["$.value"]),
        (3, "/v1/changed", ["$.value"]),
    ]
    assert report["routes"]["GET /v1/same"]["same"] == 2
    assert report["verdict"] == {"exit_code": 99, "differences": 2}
    assert '-  "value": 1' in text


def test_one_target_is_compared_with_the_recorded_responses(targets, recording):
    """Without a second target the recording's responses are the reference."""
    code, text = _run(str(recording), "--target", targets[2], "--ignore", "$.request_id")
    assert code == EXIT_DIFFERENCES, text
    assert "replay: 2 of 4 compared requests differ" in text


def test_a_target_that_does_not_answer_stops_the_run_before_anything_is_sent(recording):
    """Exit 1: the preflight found a dead target."""
    code, _ = _run(str(recording), "--target", "http://127.0.0.1:1")
    assert code == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["--target", "http://example.com:80"],
        ["--target", "http://127.0.0.1:1", "--ignore", "request_id"],
        ["--target", "http://127.0.0.1:1", "--rate-scale", "0"],
    ],
    ids=["remote target", "bad path", "zero rate scale"],
)
def test_bad_arguments_are_usage_errors(recording, argv):
    """Exit 2 before anything is sent."""
    assert _run(str(recording), *argv)[0] == 2


def test_requests_past_the_duration_are_unsent_and_those_without_a_response_unchecked(
    targets, tmp_path: Path
):
    """--duration stops the schedule; with one target a request with nothing recorded to
    compare with is counted, not sent."""
    path = tmp_path / "rec.jsonl"
    with path.open("w") as file:
        write_recording(file, "test", [
            RecordedRequest(0.0, "GET", "/v1/same", response=RecordedResponse(200)),
            RecordedRequest(0.01, "GET", "/v1/same"),
            RecordedRequest(60.0, "GET", "/v1/same", response=RecordedResponse(200)),
        ])  # fmt: skip
    report_path = tmp_path / "report.json"
    code, text = _run(str(path), "--target", targets[0], "--duration", "1", "--json",
                      str(report_path))  # fmt: skip
    assert code == 0, text
    totals = json.loads(report_path.read_text())["totals"]
    assert (totals["same"], totals["unchecked"], totals["unsent"]) == (1, 1, 1)
    assert "unchecked: 1 requests (no recorded response)" in text


class _Announcing(io.StringIO):
    """Output that says when something was written (the proxy prints its URL first)."""

    def __init__(self) -> None:
        super().__init__()
        self.written = gevent.event.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


def test_record_proxies_until_its_limit_then_stops_by_itself(upstream: Target, tmp_path: Path):
    """`replay record` prints where it listens, records one request and exits 0 on its own;
    the file is a recording that ``run`` can read."""
    out, rec = _Announcing(), tmp_path / "rec.jsonl"
    argv = ["record", "--listen", "127.0.0.1:0", "--target", upstream.url, "--out", str(rec),
            "--max-requests", "1", "--duration", "30"]  # fmt: skip
    recorder = gevent.spawn(main, argv, out=out)
    assert out.written.wait(10)
    url = out.getvalue().split(" on ", 1)[1].split(" ", 1)[0]
    client = HttpClient(parse_target(url), timeout_s=5)
    assert client.request("GET", "/v1/kept?x=1").status == 200
    client.close()
    assert recorder.get(timeout=10) == 0
    assert [r.path for r in read_recording(rec).requests] == ["/v1/kept?x=1"]
    assert "replay: 1 of 1 requests recorded" in out.getvalue()


def test_convert_writes_a_recording_and_says_what_it_skipped(tmp_path: Path):
    """`replay convert` on an access log: exit 0, the converted requests, the skip counts."""
    log, rec = tmp_path / "frontdoor.log", tmp_path / "rec.jsonl"
    log.write_text(
        _access("2026-12-06T10:00:00.000Z", "/v1/discovery/titles/t1")
        + "\n"
        + _access("2026-12-06T10:00:00.000Z", "/v1/discovery/home", query_chars=3)
        + "\n"
    )
    out = io.StringIO()
    assert main(["convert", str(log), "--out", str(rec)], out=out) == 0
    assert out.getvalue() == f"replay: 1 requests written to {rec}; skipped: 1 query not logged\n"
    assert read_recording(rec).requests[0].path == "/v1/discovery/titles/t1"
