"""Observing finished requests: metrics, endpoint windows and access lines, never failing."""

from __future__ import annotations

import logging

from stage_kit import endpoint, metrics, observed, request

from actors.outcomes import Outcome
from actors.plan import StepRecord
from orchestrator.frontend.observe import trace
from orchestrator.ops.access_log import FIELDS_ATTR
from orchestrator.ops.metrics import CapturingSink


def _access_lines(caplog) -> list[dict]:
    return [
        getattr(record, FIELDS_ATTR)
        for record in caplog.records
        if record.name == "frontdoor.access"
    ]


def test_a_finished_request_counts_in_metrics_its_window_and_the_access_log(caplog):
    caplog.set_level(logging.INFO)
    thing = endpoint()
    _, observer = observed(thing)
    sink = CapturingSink()
    done = request(endpoint=thing, metrics=metrics(thing, sink=sink).request())
    done.degraded, done.backend_calls, done.planned = ("ratings",), 2, True
    observer.finished(done, 200)
    assert sink.counters() == {
        "frontdoor.endpoint.things.thing.status.2xx": 1,
        "frontdoor.endpoint.things.thing.degraded": 1,
    }
    assert list(sink.timers()) == ["frontdoor.endpoint.things.thing.latency"]
    ((_, _, totals),) = observer.windows.totals()
    window = totals.snapshot()
    assert (window["calls"], window["fallbacks"]) == (1, 1)
    (line,) = _access_lines(caplog)
    assert (line["endpoint"], line["team"], line["degraded"], line["backend_calls"]) == (
        "things.thing",
        "core",
        ["ratings"],
        2,
    )


def test_quiet_paths_and_requests_without_metrics_are_not_observed(caplog):
    caplog.set_level(logging.INFO)
    _, observer = observed()
    observer.finished(request(path="/q", metrics=metrics().request()), 200)
    observer.finished(request(), 200)
    assert _access_lines(caplog) == []


def test_a_failure_to_record_is_logged_and_not_raised(caplog):
    class BrokenLog:
        def write(self, *_args: object) -> None:
            raise OSError("disk full")

    caplog.set_level(logging.INFO)
    _, observer = observed()
    observer.access_log = BrokenLog()
    observer.finished(request(metrics=metrics().request()), 200)
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.getMessage() == "request rid-1: recording metrics or access log failed"


def test_a_request_refused_before_its_plan_is_counted_as_rejected_not_timed(caplog):
    """A 0.3 ms validation failure stays out of the endpoint's latency (its own counter);
    the access line's device type is the endpoint's parameter over the header."""
    caplog.set_level(logging.INFO)
    thing = endpoint()
    _, observer = observed(thing)
    sink = CapturingSink()
    invalid = request(endpoint=thing, metrics=metrics(thing, sink=sink).request())
    observer.finished(invalid, 400)
    assert sink.counters() == {
        "frontdoor.endpoint.things.thing.status.4xx": 1,
        "frontdoor.endpoint.things.thing.rejected": 1,
    }
    assert sink.timers() == {}
    played = request(endpoint=thing, metrics=metrics(thing, sink=sink).request())
    played.environ["HTTP_X_DEVICE_TYPE"] = "header-says"
    played.planned, played.device_type = True, "tv-samsung-2024"
    observer.finished(played, 200)
    assert list(sink.timers()) == ["frontdoor.endpoint.things.thing.latency"]
    assert [line["device_type"] for line in _access_lines(caplog)] == [None, "tv-samsung-2024"]
    # The admin window (and so the dashboard) agrees: both count, one is timed.
    ((_, _, totals),) = observer.windows.totals()
    window = totals.snapshot()
    assert (window["calls"], window["client_errors"]) == (2, 1)
    assert window["latency_ms"]["samples"] == 1


def test_a_batch_call_joins_its_batchs_pipeline():
    """Its endpoint's stats go into the batch's metrics and window; its backend calls add up."""
    thing = endpoint()
    _, observer = observed(thing)
    sink = CapturingSink()
    batch = request(path="/v1/batch", metrics=metrics(thing, sink=sink).request())
    call = request(endpoint=thing, backend_calls=3)
    observer.call_finished(batch, call, 404)
    observer.call_finished(batch, request(backend_calls=1), 404)  # unrouted: calls only
    assert batch.backend_calls == 4
    batch.metrics.finish(200, 1.0)
    assert sink.counters() == {
        "frontdoor.endpoint.things.thing.status.4xx": 1,
        "frontdoor.endpoint.things.thing.rejected": 1,  # its plan never ran
    }
    assert sink.timers() == {}
    ((_, _, totals),) = observer.windows.totals()
    assert totals.snapshot()["calls"] == 1


def test_a_trace_tells_each_steps_story_in_ms_since_arrival():
    (step,) = endpoint().plan.steps
    record = StepRecord(step, outcome=Outcome.SUCCESS, sent_at=100.001, started_at=100.002)
    record.finished_at, record.attempts, record.budget_left_ms = 100.0105, 1, 489.94
    unsent = StepRecord(step)
    first, second = trace(100.0, (record, unsent))
    assert first == {
        "step": "thing",
        "backend": "things",
        "outcome": "success",
        "error": "",
        "queued_ms": 1.0,
        "started_ms": 2.0,
        "finished_ms": 10.5,
        "attempts": 1,
        "budget_left_ms": 489.9,
        "degraded": False,
    }
    assert (second["outcome"], second["queued_ms"], second["finished_ms"]) == (
        "unfinished",
        None,
        None,
    )


def test_late_heads_are_summed_in_one_warning_a_second_not_a_line_each(caplog):
    """A slowloris burst times out by the thousand: a ``late_heads`` count, no access lines."""
    from orchestrator.frontend.httpserver import Refusal
    from orchestrator.frontend.observe import Observer
    from orchestrator.ops.access_log import AccessLog
    from orchestrator.ops.admin import EndpointWindows

    now = [100.0]
    observer = Observer(EndpointWindows(()), AccessLog(slow_request_ms=1000), lambda: now[0])
    late = Refusal(408, "request_timeout", "rid", "", "", "127.0.0.1", 10_000.0)
    caplog.set_level(logging.INFO)
    for _ in range(500):
        observer.refused(late)
    now[0] += 0.5
    observer.refused(late)
    now[0] += 0.6
    observer.refused(late)
    counts = [
        getattr(r, FIELDS_ATTR)["count"]
        for r in caplog.records
        if getattr(r, FIELDS_ATTR, {}).get("event") == "late_heads"
    ]
    assert counts == [1, 501]
    assert _access_lines(caplog) == []
    observer.refused(Refusal(431, "headers_too_large", "rid-2", "GET", "/", None, 1.0))
    assert [line["status"] for line in _access_lines(caplog)] == [431]
